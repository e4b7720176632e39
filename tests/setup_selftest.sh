#!/usr/bin/env bash
# Self-test of tests/setup.sh's decisions, offline, in a scratch directory:
# which Go it picks, that a toolchain whose sha256 is not the pinned one is
# refused and nothing kept, that no proxy means a clear refusal, and what it
# asks apt for (apt-get and dpkg-query are stand-ins on PATH here, recording
# their calls: the real installs are what make setup does on a fresh machine).
# Prints "N passed, N failed, N skipped".
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
S="$REPO_ROOT/tests/setup.sh"
arch="$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')"
pin="$(sed -n 's/^GO_PIN=//p' "$S")"

# expect DESC WANT_RC PATTERN CMD...: CMD exits WANT_RC (0 or non-zero) and
# its output matches PATTERN (grep -E; empty: any output).
expect() {
	local desc="$1" want="$2" pattern="$3" rc=0
	shift 3
	"$@" >"$work/out" 2>&1 || rc=$?
	if { [ "$want" = 0 ] && [ "$rc" -ne 0 ]; } || { [ "$want" != 0 ] && [ "$rc" -eq 0 ]; }; then
		fail "$desc: exit $rc, want $want: $(head -c 300 "$work/out")"
	elif [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$work/out"; then
		fail "$desc: output lacks /$pattern/: $(head -c 300 "$work/out")"
	else
		pass "$desc"
	fi
}

fake_go() { # fake_go DIR VERSION: a Go root that says VERSION
	mkdir -p "$1/bin"
	printf 'go%s\ntime 2026-01-01T00:00:00Z\n' "$2" >"$1/VERSION"
	printf '#!/bin/sh\necho go version go%s\n' "$2" >"$1/bin/go"
	chmod +x "$1/bin/go"
}
fake_go "$work/go-new" 1.99.0
fake_go "$work/go-old" 1.20.0
export GO_CACHE="$work/cache"

expect "--go-root keeps an installed Go newer than go.mod's" 0 "^$work/go-new\$" \
	env SETUP_LOCAL_GO="$work/go-new" "$S" --go-root
expect "--go-root passes over an older one, for the pinned toolchain" 0 "^$work/cache/$pin.linux-$arch/go\$" \
	env SETUP_LOCAL_GO="$work/go-old" "$S" --go-root
expect "an unknown group is refused, by name" 1 "unknown group 'nosuch'" "$S" --packages check nosuch

# A proxy (a file:// one) serving a toolchain zip that is not the pinned one.
mkdir -p "$work/proxy/golang.org/toolchain/@v"
echo "not go" >"$work/proxy/golang.org/toolchain/@v/v0.0.1-$pin.linux-$arch.zip"
expect "a toolchain whose sha256 is not the pinned one is refused" 1 "sha256 [0-9a-f]{64}, want [0-9a-f]{64} \(pinned in tests/setup.sh\): not used" \
	env SETUP_LOCAL_GO="$work/go-old" CHEZLEPRO_GOPROXY="file://$work/proxy" "$S" go
if [ ! -e "$work/cache/$pin.linux-$arch" ] && [ -z "$(find "$work/cache" -name '.fetch.*')" ]; then
	pass "the refused toolchain left nothing in the cache"
else
	fail "the refused toolchain left $(ls -A "$work/cache")"
fi
expect "GOPROXY=off with no Go: refused, naming GOPROXY" 1 "GOPROXY \(off\) names no proxy" \
	env SETUP_LOCAL_GO="$work/go-old" CHEZLEPRO_GOPROXY=off "$S" go
expect "GOPROXY=off,PROXY: off stops the list, as for go" 1 "GOPROXY \(off,file://[^)]*\) names no proxy" \
	env SETUP_LOCAL_GO="$work/go-old" CHEZLEPRO_GOPROXY="off,file://$work/proxy" "$S" go
expect "GOPROXY=direct only: refused too" 1 "GOPROXY \(direct\) names no proxy" \
	env SETUP_LOCAL_GO="$work/go-old" CHEZLEPRO_GOPROXY=direct "$S" go
expect "a proxy that has no such file: the URL is named" 1 "could not download file://$work/nowhere/golang.org/toolchain/@v/v0.0.1-$pin.linux-$arch.zip" \
	env SETUP_LOCAL_GO="$work/go-old" CHEZLEPRO_GOPROXY="file://$work/nowhere" "$S" go

# apt: dpkg-query says which of the asked packages are installed (those in
# $work/installed); apt-get records its calls and fails "install" once when
# $work/stale-lists exists (lists too old), as on a fresh machine.
mkdir -p "$work/bin"
cat >"$work/bin/dpkg-query" <<'SH'
#!/bin/bash
shift 2 # -W -f=...
for p in "$@"; do
	if grep -qx "$p" "$WORK/installed"; then echo "$p installed"; fi
done
SH
cat >"$work/bin/apt-get" <<'SH'
#!/bin/bash
echo "DEBIAN_FRONTEND=${DEBIAN_FRONTEND:-} $*" >>"$WORK/apt.calls"
if [[ " $* " == *" install "* ]] && [ -e "$WORK/stale-lists" ]; then rm "$WORK/stale-lists"; exit 100; fi
SH
chmod +x "$work/bin/dpkg-query" "$work/bin/apt-get"
"$S" --packages check >"$work/installed"
fake_apt() { env WORK="$work" PATH="$work/bin:$PATH" SETUP_LOCAL_GO="$work/go-new" "$@"; }

rm -f "$work/apt.calls"
expect "nothing missing: exit 0" 0 "" fake_apt "$S" check
if [ ! -s "$work/out" ]; then pass "nothing missing: silent"; else fail "nothing missing, yet it printed: $(cat "$work/out")"; fi
if [ ! -e "$work/apt.calls" ]; then pass "nothing missing: apt-get not run (no update)"; else fail "nothing missing, yet: $(cat "$work/apt.calls")"; fi

sed -i '/^gpg$/d; /^shellcheck$/d' "$work/installed"
expect "two missing: one line names them" 0 "^setup: installed gpg shellcheck in [0-9]+ s\$" fake_apt "$S" check
if [ "$(cat "$work/apt.calls")" = "DEBIAN_FRONTEND=noninteractive -y -qq -o DPkg::Lock::Timeout=600 install --no-install-recommends gpg shellcheck" ]; then
	pass "only the missing ones, no recommends, noninteractive, no update"
else
	fail "apt-get calls: $(cat "$work/apt.calls")"
fi

rm -f "$work/apt.calls"
touch "$work/stale-lists"
expect "stale lists: installed after an update" 0 "^setup: installed gpg shellcheck" fake_apt "$S" check
if [ "$(awk '{ for (i = 2; i <= NF; i++) if ($i == "install" || $i == "update") print $i }' "$work/apt.calls" | paste -sd' ')" = "install update install" ]; then
	pass "stale lists: install, update, install again"
else
	fail "stale lists: apt-get calls: $(cat "$work/apt.calls")"
fi
# ansible-core 2.19 from trixie: apt-get and apt-cache are stand-ins again
# (indextargets names the mirror, update, show the version in
# $work/trixie-version, download a .deb made here with dpkg-deb); the
# unpacking, the requirements check against this machine's python3 and the
# wrappers are real.
export CHEZLEPRO_ANSIBLE_CACHE="$work/ansible"
"$S" --packages ansible-2.19 >>"$work/installed"
# fake_deb VERSION REQUIRES: an ansible-core .deb whose ansible-playbook
# prints VERSION when its dist-packages is on PYTHONPATH.
fake_deb() {
	local d="$work/deb-src"
	rm -rf "$d" && mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/usr/lib/python3/dist-packages/fakeansible" \
		"$d/usr/lib/python3/dist-packages/ansible_core-$1.dist-info"
	printf 'Package: ansible-core\nVersion: %s\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' "$1" >"$d/DEBIAN/control"
	printf 'Metadata-Version: 2.1\nName: ansible-core\nVersion: %s\nRequires-Dist: %s\n' "$1" "$2" \
		>"$d/usr/lib/python3/dist-packages/ansible_core-$1.dist-info/METADATA"
	printf 'VERSION = "%s"\n' "$1" >"$d/usr/lib/python3/dist-packages/fakeansible/__init__.py"
	printf '#!/usr/bin/python3\nimport fakeansible\nprint("ansible-playbook [core %%s]" %% fakeansible.VERSION)\n' >"$d/usr/bin/ansible-playbook"
	chmod 0755 "$d/usr/bin/ansible-playbook"
	dpkg-deb --root-owner-group -Zgzip --build "$d" "$work/ansible-core.deb" >/dev/null
}
cat >"$work/bin/apt-get" <<'SH'
#!/bin/bash
echo "$*" >>"$WORK/apt.calls"
case " $* " in
*" indextargets "*) [ -e "$WORK/no-main" ] || echo "http://mirror.invalid/debian/ main" ;;
*" update"*)
	for a in "$@"; do [[ $a != Dir::Etc::SourceList=* ]] || echo "source: $(cat "${a#*=}")" >>"$WORK/apt.calls"; done
	[ ! -e "$WORK/update-fails" ] || { echo "E: The repository is not signed." >&2; exit 100; }
	;;
*" download "*) cp "$WORK/ansible-core.deb" "ansible-core_$(cat "$WORK/trixie-version")_all.deb" ;;
esac
SH
cat >"$work/bin/apt-cache" <<'SH'
#!/bin/bash
echo "Version: $(cat "$WORK/trixie-version")"
SH
chmod +x "$work/bin/apt-get" "$work/bin/apt-cache"
left_nothing() { # left_nothing DESC: the cache holds no version and no scratch
	local left
	left="$(find "$work/ansible" -mindepth 1 -maxdepth 1 ! -name .lock -printf '%f ')"
	if [ -z "$left" ]; then pass "$1: nothing left in the cache"; else fail "$1: left $left"; fi
}

echo 2.20.1-1 >"$work/trixie-version"
fake_deb 2.20.1 'PyYAML>=5.1'
expect "trixie offering 2.20.1: refused, naming it" 1 "Debian trixie at http://mirror.invalid/debian/ has ansible-core '2.20.1-1', not 2.19.x" \
	fake_apt "$S" ansible-2.19
left_nothing "the wrong series"

touch "$work/update-fails"
expect "a failing apt-get update: refused, with apt's words" 1 "apt-get update of http://mirror.invalid/debian/ trixie failed: E: The repository is not signed" \
	fake_apt "$S" ansible-2.19
rm "$work/update-fails"
left_nothing "the failed update"

echo 2.19.11-0+deb13u1 >"$work/trixie-version"
fake_deb 2.19.11 'jinja2>=99.0'
expect "requirements this machine's python3 lacks: refused, naming them" 1 "ansible-core needs jinja2>=99.0, this machine has [0-9.]+" \
	fake_apt "$S" ansible-2.19
left_nothing "the unmet requirements"

touch "$work/no-main"
expect "no Debian main source in apt's configuration: refused" 1 "no Debian main source in this machine's apt configuration" \
	fake_apt "$S" ansible-2.19
rm "$work/no-main"
expect "--ansible-bin before it is unpacked: refused, saying how" 1 "ansible-core 2.19 is not unpacked yet: run tests/setup.sh ansible-2.19" \
	"$S" --ansible-bin 2.19
expect "--ansible-bin of an unknown series: refused" 1 "no ansible-core 2.99 here" "$S" --ansible-bin 2.99
expect "--sanity-site before they are unpacked: refused, saying how" 1 "sanity-2.19's tools are not unpacked yet: run tests/setup.sh sanity-2.19" \
	"$S" --sanity-site 2.19

fake_deb 2.19.11 'PyYAML>=5.1'
rm -f "$work/apt.calls"
expect "2.19 unpacked: one line says which and where" 0 "^setup: installed ansible-core 2.19.11-0\+deb13u1 \(Debian trixie, signature checked by apt\) in $work/ansible in [0-9]+ s\$" \
	fake_apt "$S" ansible-2.19
if grep -q "Dir::Etc::SourceList=$work/ansible/.fetch.*Dir::Etc::SourceParts=- .*Dir::State::status=/dev/null.* update" "$work/apt.calls" &&
	grep -qx "source: deb \[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg\] http://mirror.invalid/debian/ trixie main" "$work/apt.calls" &&
	! grep -qi -e unauthenticated -e insecure -e 'trusted=yes' "$work/apt.calls"; then
	pass "apt-get ran on a scratch configuration, signature checks on"
else
	fail "apt-get calls: $(cat "$work/apt.calls")"
fi
expect "--ansible-bin 2.19: its wrappers" 0 "^$work/ansible/2.19.11-0\+deb13u1/bin\$" "$S" --ansible-bin 2.19
expect "the wrapper runs it on the system's python3 with its PYTHONPATH" 0 "^ansible-playbook \[core 2.19.11\]\$" \
	"$work/ansible/2.19.11-0+deb13u1/bin/ansible-playbook" --version
expect "--ansible-bin 2.14: the system's" 0 "^/usr/bin\$" "$S" --ansible-bin 2.14
rm -f "$work/apt.calls"
expect "2.19 present: exit 0" 0 "" fake_apt "$S" ansible-2.19
if [ ! -s "$work/out" ] && [ ! -e "$work/apt.calls" ]; then
	pass "2.19 present: silent, apt not run"
else
	fail "2.19 present, yet: $(cat "$work/out" "$work/apt.calls" 2>/dev/null)"
fi
summary
