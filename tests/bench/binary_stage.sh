#!/usr/bin/env bash
# Benchmark of chezlepro.sovereign.binary_stage on this machine, run as the
# module binary with an args file exactly as ansible-core runs it.
#
#   cold: stage a new SIZE_MB MiB binary (copy under a temporary name, fsync,
#         read back and verify its sha256, rename, swap the slot) against what
#         a user would otherwise do: `cp SRC DST && sha256sum DST`.
#   noop: the same request again once staged (no writes, no hashing).
#
# Both sides use the same source file, already in the page cache, and start
# from a `sync` so neither pays for the other's dirty pages. Medians of
# BENCH_REPEATS (default 5) runs each, interleaved.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

size_mb="${BENCH_SIZE_MB:-100}"
repeats="${BENCH_REPEATS:-5}"
noop_repeats="${BENCH_NOOP_REPEATS:-11}"

work="$(mktemp -d /var/tmp/bench-binary_stage.XXXXXX)"
trap 'rm -rf "$work"' EXIT

bin="bin/binary_stage_linux_amd64"
case "$(uname -m)" in
aarch64 | arm64) bin="bin/binary_stage_linux_arm64" ;;
esac
if [ ! -x "$bin" ]; then
	bin="$work/binary_stage"
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin" ./modules/binary_stage
fi

src="$work/src/app"
mkdir -p "$work/src"
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$src"
chmod 755 "$src"
sum="$(sha256sum "$src" | cut -d' ' -f1)"
cat "$src" >/dev/null # in the page cache for both sides

args="$work/args.json"
printf '{"src": "%s", "checksum": "sha256:%s", "version": "1.0", "root": "%s", "slot": "green"}\n' \
	"$src" "$sum" "$work/root" | module_defaults binary_stage >"$args"

now_ns() { date +%s%N; }

# run_module prints the elapsed milliseconds of one module run and checks
# that it reported what the scenario expects (changed true or false).
run_module() {
	local want="$1" out t0 t1
	t0=$(now_ns)
	out="$("$bin" "$args")"
	t1=$(now_ns)
	if ! grep -q "\"changed\": *$want" <<<"$out" || grep -q '"failed": *true' <<<"$out"; then
		echo "binary_stage run did not report changed=$want: $out" >&2
		exit 1
	fi
	echo $(((t1 - t0) / 1000000))
}

run_baseline() {
	local dst="$work/baseline/app" t0 t1 got
	mkdir -p "$work/baseline"
	t0=$(now_ns)
	cp "$src" "$dst"
	got="$(sha256sum "$dst" | cut -d' ' -f1)"
	t1=$(now_ns)
	if [ "$got" != "$sum" ]; then
		echo "baseline copy has sha256 $got, want $sum" >&2
		exit 1
	fi
	echo $(((t1 - t0) / 1000000))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cold=()
base=()
for _ in $(seq "$repeats"); do
	rm -rf "$work/root" "$work/baseline"
	sync
	cold+=("$(run_module true)")
	sync
	base+=("$(run_baseline)")
done
cold_ms="$(printf '%s\n' "${cold[@]}" | median)"
base_ms="$(printf '%s\n' "${base[@]}" | median)"
ratio="$(awk -v a="$cold_ms" -v b="$base_ms" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
echo "bench: stage scenario=cold size_mb=$size_mb ms=$cold_ms baseline_ms=$base_ms ratio=$ratio runs=$repeats module_runs_ms=$(IFS=,; echo "${cold[*]}") baseline_runs_ms=$(IFS=,; echo "${base[*]}")"

noop=()
sync
for _ in $(seq "$noop_repeats"); do
	noop+=("$(run_module false)")
done
noop_ms="$(printf '%s\n' "${noop[@]}" | median)"
echo "bench: stage scenario=noop size_mb=$size_mb ms=$noop_ms runs=$noop_repeats"

status=0
if awk -v r="$ratio" 'BEGIN {exit !(r > 1.3)}'; then
	echo "binary_stage bench: cold ratio $ratio is above the 1.3 target" >&2
	status=1
fi
if [ "$noop_ms" -gt 50 ]; then
	echo "binary_stage bench: noop $noop_ms ms is above the 50 ms target" >&2
	status=1
fi
exit $status
