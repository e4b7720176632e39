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
summary
