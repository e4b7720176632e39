#!/usr/bin/env bash
# Reproducibility and sovereignty of the build: every module is built again
# from a copy of the checkout at another path, with an empty build cache, no
# module cache, GOPROXY=off and, when unshare works, no network namespace at
# all. The binaries must be byte-identical to the ones `make build` produced
# here with a warm cache.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
setup_for check
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

netless=()
if unshare -n true 2>/dev/null; then
	netless=(unshare -n)
else
	skip "the clean build without a network: this machine cannot create a network namespace (unshare -n); it runs with GOPROXY=off only"
fi

mkdir -p "$work/src"
git ls-files -z --cached | xargs -0 cp --parents -t "$work/src"
# A clean HOME and GOPATH: nothing may come from this machine's module cache.
if ! (cd "$work/src" && env -i PATH="$PATH" HOME="$work/home" GOPATH="$work/gopath" \
	GOCACHE="$work/cache" "${netless[@]}" make -s build >"$work/build.log" 2>&1); then
	fail "offline build from a clean copy: $(tail -n 20 "$work/build.log")"
	summary
	exit 1
fi
pass "make build from vendor/ with GOPROXY=off, empty caches${netless:+ and no network}"

for bin in bin/*_linux_*; do
	name="$(basename "$bin")"
	# Test-only fault hooks are built only with -tags faults (make faults).
	if grep -aq SOVEREIGN_FAULT "$bin"; then
		fail "$name holds the test-only fault hook (SOVEREIGN_FAULT): built with -tags faults?"
	else
		pass "$name has no fault hook"
	fi
	copy="$(sha256sum <"$work/src/$bin" | cut -d' ' -f1)"
	here="$(sha256sum <"$bin" | cut -d' ' -f1)"
	if [ "$copy" = "$here" ]; then
		pass "$name reproducible: sha256 $here"
	else
		fail "$name differs: clean offline copy $copy, make build $here"
	fi
done
summary
