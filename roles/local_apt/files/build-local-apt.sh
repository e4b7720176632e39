#!/usr/bin/env bash
# Builds (or completes) a flat apt repository on the controller:
#   build-local-apt.sh REPO_DIR BASELINE_STATUS PACKAGE...
# apt's own solver decides what a host lacks: the packages and every
# dependency not installed according to BASELINE_STATUS (a dpkg status
# file: a host's /var/lib/dpkg/status, or an empty file for the whole
# closure). apt-get download fetches them through the controller's apt,
# which checks each .deb against Debian's signed Release; then
# dpkg-scanpackages writes the Packages index, and REPO_DIR.tar holds both
# (what the hosts get). Prints "changed" when it added a package. Concurrent builds of one REPO_DIR are serialised.
set -euo pipefail
repo=$1 baseline=$2
shift 2
if (($# == 0)); then
	echo "build-local-apt.sh: no package given" >&2
	exit 2
fi
if [[ ! -f "$baseline" ]]; then
	echo "build-local-apt.sh: baseline dpkg status $baseline does not exist" >&2
	exit 2
fi
command -v dpkg-scanpackages >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
mkdir -p "$repo"
exec 9>"$(dirname "$repo")/.$(basename "$repo").lock"
flock 9

# "Inst NAME (VERSION ...": what apt would install on a host in that state.
# -s needs no lock and changes nothing on the controller.
sim=$(apt-get -s -o Dir::State::status="$baseline" -o APT::Install-Recommends=false install "$@" 2>&1) || {
	echo "build-local-apt.sh: apt cannot resolve $*:" >&2
	echo "$sim" >&2
	exit 1
}
mapfile -t wanted < <(sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' <<<"$sim")
cd "$repo"
missing=()
for pv in "${wanted[@]}"; do
	name=${pv%%=*} version=${pv#*=}
	# Debian file names drop the epoch.
	compgen -G "${name}_${version#*:}_*.deb" >/dev/null || missing+=("$pv")
done
added=0
if ((${#missing[@]})); then
	# One apt-get for all: each start costs a second or more.
	apt-get download -qq "${missing[@]}" 2>&1 | grep -v "couldn't be accessed by user '_apt'" >&2 || true
	for pv in "${missing[@]}"; do
		name=${pv%%=*} version=${pv#*=}
		if ! compgen -G "${name}_${version#*:}_*.deb" >/dev/null; then
			echo "build-local-apt.sh: apt-get download $pv produced no .deb" >&2
			exit 1
		fi
	done
	added=1
fi
tarball="$repo.tar"
if ((added)) || [[ ! -f Packages ]] || [[ ! -f "$tarball" ]]; then
	dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages.tmp
	mv Packages.tmp Packages
	# One file to carry to the hosts (a copy per .deb is slow); the same
	# content gives the same bytes, so an unchanged repository is not sent.
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$tarball.tmp" -- *.deb Packages
	mv "$tarball.tmp" "$tarball"
	echo changed
fi
