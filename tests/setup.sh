#!/usr/bin/env bash
# The one set-up step of every test entry point (make setup, make test, make
# check, each suite, make demo): installs the Debian packages the named
# groups need, only those missing, and makes sure a Go toolchain at least as
# new as go.mod asks for is there. A fresh Debian 12 machine needs only git,
# make and apt to start.
#
#   tests/setup.sh [GROUP...]   default: all groups but arm64
#   tests/setup.sh --go-root    prints the Go root the targets use (installs nothing)
#   tests/setup.sh --packages GROUP...   prints the groups' packages
#   tests/setup.sh --ansible-bin SERIES  prints the directory of SERIES' ansible
#                                        commands (2.14: the system's; installs nothing)
#   tests/setup.sh --sanity-site SERIES  prints the site-packages directory of
#                                        sanity-SERIES' tools (installs nothing)
#
# Groups (a suite names the ones it needs; add one here for a new suite):
#   go       the Go toolchain only (make build)
#   check    make check: ansible-doc/galaxy, lint, unit tests, packaging
#   lab      the systemd-nspawn lab: lab-selftest, e2e, demo, test-traefik
#   vm       make test-vm and make vm-image: libvirt, qemu, debootstrap
#   ansible-2.19  Debian trixie's ansible-core 2.19 beside the system's 2.14 (e2e)
#   sanity-2.19   trixie's pylint 3 and astroid, for ansible-test sanity 2.19's
#                 pylint (Debian 12 has pylint 2), unpacked beside (make sanity)
#   arm64    arm64 lab hosts (make test-arm64): qemu-user, with no handler
#            registered in the machine's binfmt_misc (binfmt-support not installed)
#
# Go: /usr/local/go is kept when it is at least what go.mod asks for (go and
# toolchain lines). Otherwise the pinned toolchain below is fetched as the
# module golang.org/toolchain from the Go module proxy (the first entry of
# GOPROXY, default https://proxy.golang.org), its zip checked against the
# sha256 pinned here, and unpacked under GO_CACHE (/var/cache/chezlepro-go).
#
# ansible-core 2.19: Debian 12 ships 2.14; the e2e suite runs on both it and
# trixie's package. That .deb is fetched with apt from this machine's Debian
# mirror through a scratch apt configuration (the machine's own sources,
# lists and cache are untouched; apt checks the Release signature against
# debian-archive-keyring as usual), unpacked with dpkg -x under ANSIBLE_CACHE
# (/var/cache/chezlepro-ansible/VERSION) and run by /usr/bin/python3 with
# PYTHONPATH on it, through wrappers in VERSION/bin. Bookworm's python3 deps
# meet its Requires-Dist (checked at unpack time), so nothing else is taken
# from trixie. Once unpacked it is used with no network.
# Prints one line of what it installed; nothing when nothing was missing.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GO_CACHE="${GO_CACHE:-/var/cache/chezlepro-go}"
# SETUP_LOCAL_GO: where an installed Go is looked for (tests point it elsewhere).
LOCAL_GO="${SETUP_LOCAL_GO:-/usr/local/go}"
ANSIBLE_CACHE="${CHEZLEPRO_ANSIBLE_CACHE:-/var/cache/chezlepro-ansible}"
# The Debian suite each extra ansible-core series comes from.
declare -A ANSIBLE_SUITE=([2.19]=trixie)

# The pinned toolchain. The sha256 is of the module zip the proxy serves; it is
# pinned rather than looked up in the checksum database at run time because a
# machine without Go has nothing to verify the database's signed tree with.
# Recorded with `go mod download -json golang.org/toolchain@v0.0.1-go1.26.8.linux-ARCH`,
# which did check the zips against sum.golang.org:
#   amd64 h1:ZOmGe1OnfREDMIdb1Qi4G9JSuDPBLGExZMQ4nis1RXM=
#   arm64 h1:sYL/O6MqS68ML0kjsQ36WoYIpJqkw60TxizWUYUKQMc=
# It is the version docs/rebuild-without-internet.md keeps.
GO_PIN=go1.26.8
declare -A GO_PIN_SHA256=(
	[amd64]=30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7
	[arm64]=02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99
)

die() {
	printf 'setup: %s\n' "$*" >&2
	exit 1
}

arch() {
	case "$(uname -m)" in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	*) die "this machine is $(uname -m); the tests run on amd64 or arm64" ;;
	esac
}

# group_packages GROUP: the Debian packages of GROUP, one a line.
group_packages() {
	local qemu=qemu-system-x86
	[ "$(arch)" = amd64 ] || qemu="qemu-system-arm"
	case "$1" in
	go) ;;
	# ansible-core: ansible-playbook, -galaxy, -doc (every suite drives
	# playbooks or builds the collection); git: the checkout, source_build's
	# tests and the build check's clean copy; gpg: source_build's signed
	# tags, and gpg-agent, only recommended by gpg, to make their keys;
	# binutils: readelf in package_check; util-linux: flock, mount;
	# ansible-test sanity's tests (tests/sanity.sh), from Debian rather than
	# PyPI: pylint, pycodestyle (pep8), python3-voluptuous (validate-modules,
	# runtime-metadata), python3-venv (its environments).
	check) printf '%s\n' make git ansible-core python3 yamllint shellcheck ansible-lint gpg gpg-agent binutils util-linux \
		pylint pycodestyle python3-voluptuous python3-venv ;;
	# tests/lab/lab.sh: the hosts' rootfs, nspawn, their network, ssh to them.
	lab) printf '%s\n' make git ansible-core python3 debootstrap systemd-container iproute2 openssh-client util-linux ;;
	# tests/rebuild: a lab, and iptables to count the controller's packets
	# that leave the lab's network namespace.
	rebuild) printf '%s\n' make git ansible-core python3 debootstrap systemd-container iproute2 openssh-client util-linux iptables ;;
	# tests/vm: the hypervisor, the image build, the seed ISO, ssh and curl into the VM.
	vm) printf '%s\n' make git ansible-core python3 libvirt-daemon-system libvirt-clients "$qemu" qemu-utils \
		genisoimage debootstrap e2fsprogs openssh-client curl ;;
	# The system's ansible-core brings the python3 deps trixie's runs on;
	# apt and dpkg fetch and unpack it.
	ansible-2.19 | sanity-2.19) printf '%s\n' ansible-core python3 apt dpkg debian-archive-keyring ;;
	# tests/lab/lab.sh --arch arm64: Debian's static qemu-user runs the hosts'
	# arm64 programs (installed without binfmt-support, which it recommends).
	arm64) printf '%s\n' qemu-user-static ;;
	*) die "unknown group '$1' (groups: $ALL_GROUPS arm64)" ;;
	esac
}
# The default (what make test needs); arm64 only when asked (make test-arm64).
ALL_GROUPS="go check lab rebuild vm ansible-2.19 sanity-2.19"
# What sanity-SERIES unpacks from ANSIBLE_SUITE[SERIES]: pure Python, their
# other requirements met by Debian 12's python3 packages (checked).
SANITY_TOOLS=(pylint python3-astroid)

# missing_packages PKG...: those of PKG not installed, one a line.
missing_packages() {
	[ $# -gt 0 ] || return 0
	dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null |
		awk -v want="$*" '$2 == "installed" { ok[$1] = 1 }
			END { n = split(want, w, " "); for (i = 1; i <= n; i++) if (!ok[w[i]]) print w[i] }'
}

# apt_install PKG...: installs them; apt-get update only when the lists are
# too old or absent for the install to work.
apt_install() {
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages $*: run as root (or apt-get install them)"
	local apt=(apt-get -y -qq -o DPkg::Lock::Timeout=600 install --no-install-recommends "$@")
	if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null 2>&1; then
		apt-get -qq -o DPkg::Lock::Timeout=600 update || die "apt-get update failed (installing $*)"
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" >/dev/null || die "could not install $*"
	fi
}

# go_version_ok ROOT WANT: ROOT holds a go at least WANT (1.25, 1.26.8).
go_version_ok() {
	local have
	[ -x "$1/bin/go" ] && [ -r "$1/VERSION" ] || return 1
	have="$(sed -n '1s/^go//p' "$1/VERSION")"
	[ -n "$have" ] && [ "$(printf '%s\n%s\n' "$2" "$have" | sort -V | head -n1)" = "$2" ]
}

# go_wanted: the newest go or toolchain line of the repository's go.mod files.
go_wanted() {
	sed -n -e 's/^go \([0-9.]*\).*/\1/p' -e 's/^toolchain go\([0-9.]*\).*/\1/p' \
		"$REPO_ROOT/go.mod" "$REPO_ROOT/demo/webapp/go.mod" | sort -V | tail -n1
}

pinned_root() { printf '%s/%s.linux-%s/go\n' "$GO_CACHE" "$GO_PIN" "$(arch)"; }

go_root() {
	if go_version_ok "$LOCAL_GO" "$(go_wanted)"; then
		echo "$LOCAL_GO"
	else
		pinned_root
	fi
}

# proxy_url: the first proxy of GOPROXY (the caller's, before make turns it
# off for the builds: CHEZLEPRO_GOPROXY).
proxy_url() {
	local list="${CHEZLEPRO_GOPROXY:-${GOPROXY:-}}" p
	# Under make, GOPROXY is off for the builds and CHEZLEPRO_GOPROXY is the
	# caller's; set, it is the one that counts.
	[ -z "${CHEZLEPRO_GOPROXY+set}" ] || list="$CHEZLEPRO_GOPROXY"
	[ -n "$list" ] || list=https://proxy.golang.org
	for p in ${list//[,|]/ }; do
		case "$p" in
		off) break ;;
		direct) continue ;;
		*) echo "${p%/}" && return 0 ;;
		esac
	done
	return 1
}

# fetch_go: the pinned toolchain into pinned_root, verified, atomically.
fetch_go() {
	local root arch sum proxy version url tmp
	root="$(pinned_root)"
	arch="$(arch)"
	sum="${GO_PIN_SHA256[$arch]}"
	go_version_ok "$root" "$(go_wanted)" && return 0
	[ "$(printf '%s\n%s\n' "$(go_wanted)" "${GO_PIN#go}" | sort -V | head -n1)" = "$(go_wanted)" ] ||
		die "the pinned $GO_PIN (tests/setup.sh) is older than go.mod's go $(go_wanted): update the pin"
	proxy="$(proxy_url)" ||
		die "Go $(go_wanted) or newer is needed, $LOCAL_GO has none, and GOPROXY (${CHEZLEPRO_GOPROXY:-${GOPROXY:-}}) names no proxy to fetch $GO_PIN from"
	version="v0.0.1-$GO_PIN.linux-$arch"
	url="$proxy/golang.org/toolchain/@v/$version.zip"
	mkdir -p "$GO_CACHE"
	exec 9>"$GO_CACHE/.lock"
	flock 9
	go_version_ok "$root" "$(go_wanted)" && return 0 # another setup fetched it meanwhile
	tmp="$(mktemp -d "$GO_CACHE/.fetch.XXXXXX")"
	# shellcheck disable=SC2064 # expand tmp now
	trap "rm -rf '$tmp'" EXIT
	curl -fsSL --retry 3 -o "$tmp/go.zip" "$url" || die "could not download $url"
	printf '%s  %s\n' "$sum" "$tmp/go.zip" | sha256sum --quiet -c - 2>/dev/null ||
		die "$url: sha256 $(sha256sum <"$tmp/go.zip" | cut -d' ' -f1), want $sum (pinned in tests/setup.sh): not used"
	python3 -m zipfile -e "$tmp/go.zip" "$tmp/x" || die "could not unpack $url"
	# Module zips keep no file modes: the commands get theirs back, as go's
	# own toolchain switch does.
	find "$tmp/x/golang.org/toolchain@$version/bin" "$tmp/x/golang.org/toolchain@$version/pkg/tool" -type f -exec chmod 0755 {} +
	mkdir -p "$(dirname "$root")"
	rm -rf "$root"
	mv "$tmp/x/golang.org/toolchain@$version" "$root"
	rm -rf "$tmp"
	trap - EXIT
	"$root/bin/go" version >/dev/null || die "$root/bin/go does not run"
}

# ansible_bin SERIES: the directory of SERIES' ansible commands: the system's
# for 2.14, else the newest one unpacked under ANSIBLE_CACHE (fails if none).
ansible_bin() {
	local d
	case "$1" in
	2.14) echo /usr/bin && return 0 ;;
	*) [ -n "${ANSIBLE_SUITE[$1]:-}" ] || die "no ansible-core $1 here (series: 2.14 ${!ANSIBLE_SUITE[*]})" ;;
	esac
	d="$(find "$ANSIBLE_CACHE" -mindepth 3 -maxdepth 3 -path "$ANSIBLE_CACHE/$1.*/bin/ansible-playbook" 2>/dev/null |
		sort -V | tail -n1)"
	[ -n "$d" ] && dirname "$d"
}

# suite_apt WHAT SUITE TMP: a scratch apt configuration in TMP for Debian
# SUITE from this machine's mirror (only that source, its own lists and cache,
# no installed-package state; signatures checked as for any apt source),
# updated, with TMP/deb for downloads; its apt options in SUITE_APT, the
# mirror in SUITE_MIRROR.
suite_apt() {
	local what="$1" suite="$2" tmp="$3" mirror
	SUITE_MIRROR=""
	# The mirror this machine's apt uses for Debian main, as apt itself reads it.
	# shellcheck disable=SC2016 # apt's format fields, not shell
	mirror="$(apt-get indextargets --format '$(REPO_URI) $(COMPONENT)' 'Created-By: Packages' |
		awk '$2 == "main" && $1 !~ /-security\/$/ { print $1; exit }')"
	[ -n "$mirror" ] || die "$what: no Debian main source in this machine's apt configuration"
	SUITE_MIRROR="$mirror"
	chmod 0755 "$tmp"
	mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/deb"
	# apt's download sandbox user writes the .deb.
	if id _apt >/dev/null 2>&1; then chown _apt "$tmp/deb" "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial"; fi
	printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$mirror" "$suite" >"$tmp/apt/sources.list"
	SUITE_APT=(-o "Dir::Etc::SourceList=$tmp/apt/sources.list" -o Dir::Etc::SourceParts=- -o "Dir::State::Lists=$tmp/apt/lists"
		-o "Dir::Cache=$tmp/apt/cache" -o Dir::State::status=/dev/null -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false)
	apt-get -qq "${SUITE_APT[@]}" update >"$tmp/apt.log" 2>&1 ||
		die "$what: apt-get update of $mirror $suite failed: $(tail -n 3 "$tmp/apt.log")"
}

# cache_lock: ANSIBLE_CACHE's lock, held until this (sub)shell exits, so
# concurrent setups unpack each thing once.
cache_lock() {
	mkdir -p "$ANSIBLE_CACHE"
	exec 8>"$ANSIBLE_CACHE/.lock"
	flock 8
}

# fetch_dir: a scratch directory in ANSIBLE_CACHE (FETCH_DIR), removed when
# this (sub)shell exits unless its result was moved out.
fetch_dir() {
	FETCH_DIR="$(mktemp -d "$ANSIBLE_CACHE/.fetch.XXXXXX")"
	# shellcheck disable=SC2064 # expand FETCH_DIR now
	trap "rm -rf '$FETCH_DIR'" EXIT
}

# sanity_site SERIES: the site-packages of sanity-SERIES' tools, the newest
# unpacked under ANSIBLE_CACHE/sanity-SERIES-PYLINT_VERSION (fails if none).
sanity_site() {
	local d
	d="$(find "$ANSIBLE_CACHE" -mindepth 6 -maxdepth 6 -path "$ANSIBLE_CACHE/sanity-$1-*/usr/lib/python3/dist-packages/pylint" \
		2>/dev/null | sort -V | tail -n1)"
	[ -n "$d" ] && dirname "$d"
}

# fetch_sanity_tools SERIES: SANITY_TOOLS from ANSIBLE_SUITE[SERIES] unpacked
# under ANSIBLE_CACHE/sanity-SERIES-PYLINT_VERSION, atomically.
fetch_sanity_tools() {
	local series="$1" suite="${ANSIBLE_SUITE[$1]}" tmp version root deb site
	cache_lock
	if site="$(sanity_site "$series")"; then # another setup unpacked them meanwhile
		echo "$site"
		return 0
	fi
	fetch_dir
	tmp="$FETCH_DIR"
	suite_apt "sanity-$series" "$suite" "$tmp"
	(cd "$tmp/deb" && apt-get -qq "${SUITE_APT[@]}" download "${SANITY_TOOLS[@]}" >>"$tmp/apt.log" 2>&1) ||
		die "sanity-$series: could not download ${SANITY_TOOLS[*]} from $SUITE_MIRROR $suite: $(tail -n 3 "$tmp/apt.log")"
	for deb in "$tmp"/deb/*.deb; do
		dpkg -x "$deb" "$tmp/root" || die "sanity-$series: could not unpack $deb"
	done
	site="$tmp/root/usr/lib/python3/dist-packages"
	python3_requirements_met "$site" ||
		die "sanity-$series: this machine's python3 packages do not meet the requirements of ${SANITY_TOOLS[*]} (above)"
	version="$(dpkg-deb -f "$tmp"/deb/pylint_*.deb Version)"
	root="$ANSIBLE_CACHE/sanity-$series-$version"
	rm -rf "$root"
	mv "$tmp/root" "$root"
	rm -rf "$tmp"
	trap - EXIT
	PYTHONPATH="$root/usr/lib/python3/dist-packages" /usr/bin/python3 -m pylint --version >/dev/null ||
		die "$root: its pylint does not run"
	echo "$root/usr/lib/python3/dist-packages"
}

# fetch_ansible SERIES: Debian's ansible-core SERIES.x (from ANSIBLE_SUITE)
# unpacked under ANSIBLE_CACHE/VERSION, with wrappers in its bin/, atomically.
fetch_ansible() {
	local series="$1" suite="${ANSIBLE_SUITE[$1]}" tmp version root deb apt
	cache_lock
	if root="$(ansible_bin "$series")"; then # another setup unpacked it meanwhile
		basename "$(dirname "$root")"
		return 0
	fi
	fetch_dir
	tmp="$FETCH_DIR"
	suite_apt "ansible-core $series" "$suite" "$tmp"
	apt=("${SUITE_APT[@]}")
	version="$(apt-cache "${apt[@]}" show --no-all-versions ansible-core 2>/dev/null | sed -n 's/^Version: //p')"
	case "$version" in
	"$series".*) ;;
	*) die "ansible-core $series: Debian $suite at $SUITE_MIRROR has ansible-core '${version:-none}', not $series.x" ;;
	esac
	(cd "$tmp/deb" && apt-get -qq "${apt[@]}" download "ansible-core=$version" >>"$tmp/apt.log" 2>&1) ||
		die "ansible-core $series: could not download ansible-core $version from $SUITE_MIRROR: $(tail -n 3 "$tmp/apt.log")"
	deb="$(echo "$tmp"/deb/ansible-core_*.deb)"
	root="$ANSIBLE_CACHE/$version"
	dpkg -x "$deb" "$tmp/root" || die "ansible-core $series: could not unpack $deb"
	# Its Requires-Dist, met by this machine's python3 packages? (else name them)
	python3_requirements_met "$tmp/root/usr/lib/python3/dist-packages" ||
		die "ansible-core $version: this machine's python3 packages do not meet its requirements (above)"
	mkdir -p "$tmp/root/bin"
	local cmd
	for cmd in "$tmp"/root/usr/bin/ansible*; do
		cmd="$(basename "$cmd")"
		cat >"$tmp/root/bin/$cmd" <<-SH
			#!/bin/sh
			# ansible-core $version from Debian $suite, beside the system's (tests/setup.sh).
			PYTHONPATH="$root/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH}" exec /usr/bin/python3 $root/usr/bin/$cmd "\$@"
		SH
		chmod 0755 "$tmp/root/bin/$cmd"
	done
	rm -rf "$root"
	mv "$tmp/root" "$root"
	rm -rf "$tmp"
	trap - EXIT
	"$root/bin/ansible-playbook" --version >/dev/null || die "$root/bin/ansible-playbook does not run"
	echo "$version"
}

# python3_requirements_met SITE: the Requires-Dist of the distribution
# unpacked in SITE hold for the system's /usr/bin/python3 packages.
python3_requirements_met() {
	/usr/bin/python3 - "$1" <<'PY'
import importlib.metadata as md, sys
from packaging.requirements import Requirement
missing = []
for dist in md.distributions(path=[sys.argv[1]]):
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker and not req.marker.evaluate({"extra": ""}):
            continue
        # Met by the site itself first (pylint by the astroid beside it).
        found = list(md.distributions(name=req.name, path=[sys.argv[1]] + sys.path))
        have = found[0].version if found else None
        if have is None or not req.specifier.contains(have, prereleases=True):
            missing.append(f"{dist.metadata['Name']} needs {req}, this machine has {have or 'none'}")
if missing:
    sys.exit("\n".join(missing))
PY
}

main() {
	case "${1:-}" in
	--go-root)
		go_root
		return
		;;
	--ansible-bin)
		ansible_bin "${2:?--ansible-bin SERIES}" || die "ansible-core $2 is not unpacked yet: run tests/setup.sh ansible-$2"
		return
		;;
	--sanity-site)
		sanity_site "${2:?--sanity-site SERIES}" || die "sanity-$2's tools are not unpacked yet: run tests/setup.sh sanity-$2"
		return
		;;
	--packages)
		shift
		local g
		for g in "$@"; do group_packages "$g"; done | sort -u
		return
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		return
		;;
	esac
	local groups=("$@") g want=() missing=() installed=() start version
	[ ${#groups[@]} -gt 0 ] || read -ra groups <<<"$ALL_GROUPS"
	start=$(date +%s)
	for g in "${groups[@]}"; do mapfile -t -O "${#want[@]}" want < <(group_packages "$g"); done
	# Fetching Go needs curl, its CA certificates and python3 (to unpack).
	if ! go_version_ok "$LOCAL_GO" "$(go_wanted)" && ! go_version_ok "$(pinned_root)" "$(go_wanted)"; then
		want+=(curl ca-certificates python3)
	fi
	mapfile -t want < <(printf '%s\n' "${want[@]}" | sed '/^$/d' | sort -u)
	mapfile -t missing < <(missing_packages "${want[@]}")
	if [ ${#missing[@]} -gt 0 ]; then
		apt_install "${missing[@]}"
		installed+=("${missing[@]}")
	fi
	if [ "$(go_root)" != "$LOCAL_GO" ] && ! go_version_ok "$(pinned_root)" "$(go_wanted)"; then
		fetch_go
		installed+=("$GO_PIN (golang.org/toolchain from $(proxy_url), sha256 verified) in $(pinned_root)")
	fi
	for g in "${groups[@]}"; do
		case "$g" in
		ansible-*)
			ansible_bin "${g#ansible-}" >/dev/null && continue
			version="$(fetch_ansible "${g#ansible-}")"
			installed+=("ansible-core $version (Debian ${ANSIBLE_SUITE[${g#ansible-}]}, signature checked by apt) in $ANSIBLE_CACHE")
			;;
		sanity-*)
			sanity_site "${g#sanity-}" >/dev/null && continue
			installed+=("${SANITY_TOOLS[*]} (Debian ${ANSIBLE_SUITE[${g#sanity-}]}, signature checked by apt) in $(fetch_sanity_tools "${g#sanity-}")")
			;;
		esac
	done
	if [ ${#installed[@]} -gt 0 ]; then
		printf 'setup: installed %s in %d s\n' "${installed[*]}" "$(($(date +%s) - start))"
	fi
}

main "$@"
