#!/usr/bin/env bash
# Makes (once) the Go toolchain archive the tests install with the go_toolchain
# role, from the Go the set-up chose (GO_ROOT: /usr/local/go, or the pinned
# toolchain tests/setup.sh fetched): nothing more is downloaded. The
# archive has the official layout (go1.X.Y.linux-ARCH.tar.gz, one top
# directory go/) and a sha256sum file beside it. Prints the archive's path.
#
#   tests/toolchain/archive.sh [GOROOT]        (default $GO_ROOT)
#
# Cached in .build/toolchain/ (TOOLCHAIN_DIR overrides): made again only when
# that GOROOT's version has no archive yet.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

goroot="${1:-$GO_ROOT}"
dir="${TOOLCHAIN_DIR:-$REPO_ROOT/.build/toolchain}"
[ -x "$goroot/bin/go" ] || { echo "archive.sh: no Go at $goroot (want $goroot/bin/go)" >&2; exit 1; }
version="$(GOTOOLCHAIN=local "$goroot/bin/go" env GOVERSION)"
arch="$(GOTOOLCHAIN=local "$goroot/bin/go" env GOARCH)"
archive="$dir/$version.linux-$arch.tar.gz"
if [ -s "$archive" ] && [ -s "$archive.sha256" ]; then
	printf '%s\n' "$archive"
	exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp "$archive.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
start=$(date +%s)
# Sorted names, fixed owner and no gzip timestamp: the same GOROOT gives the
# same bytes.
tar -C "$(dirname "$goroot")" --transform "s,^$(basename "$goroot"),go," --sort=name \
	--owner=0 --group=0 --numeric-owner -cf - "$(basename "$goroot")" | gzip -n -6 >"$tmp"
mv -f "$tmp" "$archive"
(cd "$dir" && sha256sum "$(basename "$archive")" >"$(basename "$archive").sha256")
echo "archive.sh: $archive ($(du -m "$archive" | cut -f1) MB) made in $(($(date +%s) - start)) s" >&2
printf '%s\n' "$archive"
