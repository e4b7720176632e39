#!/usr/bin/env bash
# Makes the "upstream" of the Traefik test: a bare git repository of
# Traefik's source at one tag, standing in for the first `git clone` of
# github.com/traefik/traefik. The source comes from the Go module proxy (the
# registry this machine reaches), fetched once and cached: the next run
# downloads nothing. The commit carries the module's own time, so the same
# version gives the same commit id on every machine.
#
#   tests/traefik/upstream.sh [VERSION]     prints the repository's path
#
#   TRAEFIK_CACHE (/var/cache/chezlepro-traefik)  where the source and repository are kept
set -euo pipefail
version="${1:-v3.6.12}"
cache="${TRAEFIK_CACHE:-/var/cache/chezlepro-traefik}"
module=github.com/traefik/traefik/v3
repo="$cache/upstream/traefik-$version.git"
export PATH="/usr/local/go/bin:$PATH"

if git -C "$repo" rev-parse -q --verify "refs/tags/$version" >/dev/null 2>&1; then
	echo "$repo"
	exit 0
fi
mkdir -p "$cache/upstream"
# The proxy is go's own setting (the Makefile turns it off for builds).
json="$(env -u GOPROXY -u GOFLAGS GOMODCACHE="$cache/gomodcache" GOFLAGS=-mod=mod \
	go mod download -json "$module@$version")"
field() { sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" <<<"$json"; }
dir="$(field Dir)"
time="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(field Info)")"
if [ ! -d "$dir" ] || [ -z "$time" ]; then
	echo "go mod download gave no source for $module@$version: $json" >&2
	exit 1
fi

work="$(mktemp -d "$cache/upstream/.work.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r "$dir/." "$work/src"
chmod -R u+w "$work/src"
export GIT_AUTHOR_NAME="traefik upstream" GIT_AUTHOR_EMAIL=upstream@traefik.invalid
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="$time" GIT_COMMITTER_DATE="$time" GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git -C "$work/src" init -q -b master
git -C "$work/src" add -A
git -C "$work/src" commit -q -m "traefik $version (from the Go module proxy's archive)"
git -C "$work/src" tag -a -m "traefik $version" "$version"
git clone -q --bare "$work/src" "$work/repo.git"
rm -rf "$repo"
mv "$work/repo.git" "$repo"
echo "$repo"
