#!/usr/bin/env bash
# Prints the path of a promtool taken from Debian's own `prometheus` package,
# extracted (not installed: installing would start a Prometheus service on
# this machine) under .build/promtool/. Downloaded once with apt-get from the
# machine's apt mirror; apt checks it against Debian's signed Release.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest="$PWD/.build/promtool"
bin="$dest/root/usr/bin/promtool"
if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dest/debs"
(cd "$dest/debs" && apt-get download -q prometheus >&2)
debs=("$dest"/debs/prometheus_*.deb)
deb=${debs[0]}
rm -rf "$dest/root.tmp"
dpkg-deb -x "$deb" "$dest/root.tmp"
rm -rf "$dest/root"
mv "$dest/root.tmp" "$dest/root"
"$bin" --version >&2
echo "$bin"
