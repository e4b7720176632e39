#!/usr/bin/env bash
# Measures the lab: time for `up` to have N hosts answering ssh with a
# finished boot, time for `down`, memory per host (proportional set size of
# every process in the host's cgroup, so shared pages are split between the
# hosts), and with --cold the time to build the rootfs from the mirror (into
# a cache of its own, so no other lab is disturbed).
#
#   tests/lab/bench.sh [--hosts N] [--runs N] [--cold] [--name LAB]
#
# Prints "bench: ..." lines; times are medians over the runs.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"

hosts=3
runs=3
cold=false
lab="labbench-$$"
while [ $# -gt 0 ]; do
	case "$1" in
	--hosts) hosts="$2"; shift 2 ;;
	--runs) runs="$2"; shift 2 ;;
	--cold) cold=true; shift ;;
	--name) lab="$2"; shift 2 ;;
	*) sed -n '2,10p' "$0" >&2; exit 2 ;;
	esac
done
L="$REPO_ROOT/tests/lab/lab.sh"
cold_cache=""
tmp="$(mktemp -d /tmp/lab-bench.XXXXXX)"
cleanup() {
	"$L" down --name "$lab" >/dev/null 2>&1 || true
	rm -rf "$tmp"
	if [ -n "$cold_cache" ]; then rm -rf --one-file-system "$cold_cache"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms() { date +%s%3N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# pss_kib N: PSS of all processes in host hN's cgroup (KiB).
pss_kib() {
	local cg p total=0 v
	for cg in /sys/fs/cgroup/unified/nspawn-"$lab"-h"$1" /sys/fs/cgroup/nspawn-"$lab"-h"$1"; do
		[ -d "$cg" ] || continue
		for p in $(find "$cg" -name cgroup.procs -exec cat {} + | sort -u); do
			v="$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)" || v=0
			total=$((total + ${v:-0}))
		done
		break
	done
	echo "$total"
}

if $cold; then
	cold_cache="$(mktemp -d /var/cache/chezlepro-lab-bench.XXXXXX)"
	t0="$(ms)"
	LAB_CACHE="$cold_cache" "$L" up --name "$lab" --hosts 1 >/dev/null
	total=$(($(ms) - t0))
	"$L" down --name "$lab" >/dev/null
	size="$(du -sm "$cold_cache"/rootfs-* | cut -f1)"
	echo "bench: lab-rootfs-build cold_up_ms=$total rootfs_mib=$size (debootstrap from the apt mirror + 1 host boot)"
	rm -rf --one-file-system "$cold_cache"
	cold_cache=""
fi

: >"$tmp/up"
: >"$tmp/down"
: >"$tmp/pss"
for ((r = 1; r <= runs; r++)); do
	t0="$(ms)"
	"$L" up --name "$lab" --hosts "$hosts" >/dev/null
	echo $(($(ms) - t0)) >>"$tmp/up"
	sleep 2 # let the boot's ssh session end
	for ((n = 1; n <= hosts; n++)); do pss_kib "$n" >>"$tmp/pss"; done
	t0="$(ms)"
	"$L" down --name "$lab" >/dev/null
	echo $(($(ms) - t0)) >>"$tmp/down"
done
echo "bench: lab-up hosts=$hosts runs=$runs median_ms=$(median <"$tmp/up") all_ms=$(paste -sd, "$tmp/up") (until every host answers ssh with systemd running)"
echo "bench: lab-down hosts=$hosts runs=$runs median_ms=$(median <"$tmp/down") all_ms=$(paste -sd, "$tmp/down")"
echo "bench: lab-memory hosts=$hosts pss_mib_per_host=$(awk '{ s += $1 } END { printf "%.1f", s / NR / 1024 }' "$tmp/pss") (idle, after boot)"
echo "bench: load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
