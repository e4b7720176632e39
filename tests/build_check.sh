#!/bin/bash
# Reproducibility and sovereignty of the build: every module is built twice,
# from two copies of the checkout at different paths with two empty build
# caches, with the network forbidden (GOPROXY=off, vendored sources, and no
# network namespace at all when unshare is available). Both builds must give
# byte-identical binaries, identical to the ones `make build` produced.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

netless=()
if unshare -n true 2>/dev/null; then
	netless=(unshare -n)
fi

for copy in a b; do
	mkdir -p "$work/$copy/src"
	git ls-files -z --cached | xargs -0 cp --parents -t "$work/$copy/src"
	# A clean HOME and GOPATH: nothing may come from this machine's module cache.
	if ! (cd "$work/$copy/src" && env -i PATH="$PATH" HOME="$work/$copy/home" GOPATH="$work/$copy/gopath" \
		GOCACHE="$work/$copy/cache" "${netless[@]}" make -s build >"$work/$copy/build.log" 2>&1); then
		fail "offline build in copy $copy: $(tail -n 20 "$work/$copy/build.log")"
		summary
		exit 1
	fi
done
pass "make build from vendor/ with GOPROXY=off${netless:+ and no network namespace}, twice, fresh caches"

for bin in plugins/modules/*_linux_*; do
	name="$(basename "$bin")"
	a="$(sha256sum <"$work/a/src/$bin" | cut -d' ' -f1)"
	b="$(sha256sum <"$work/b/src/$bin" | cut -d' ' -f1)"
	here="$(sha256sum <"$bin" | cut -d' ' -f1)"
	if [ "$a" = "$b" ] && [ "$a" = "$here" ]; then
		pass "$name reproducible: sha256 $a"
	else
		fail "$name differs: copy a $a, copy b $b, make build $here"
	fi
done
summary
