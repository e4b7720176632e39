#!/usr/bin/env bash
# Benchmark of the module cache on targets (plugins/plugin_utils/module_cache.py):
# what one task of chezlepro.sovereign.bluegreen_unit costs against
# ansible.builtin.systemd_service with pipelining on (its best), on one lab host.
#
#   task: an ad-hoc call; play: a play of 20 tasks (play_s).
#   mode=first: the host's cache emptied before; mode=cached: warm;
#   mode=plain: the cache off, ansible-core's own upload with every task (the
#   behaviour before the cache). systemd_service has one mode.
# bytes_to_target: what the controller's side of the host's veth sent during
# the run (ssh included; the ssh master stays up between runs, as in a play).
# dispatch_sha256: the controller naming the binary, from bin/SHA256SUMS or
# by hashing it.
# start: an ad-hoc ansible.builtin.debug, which reaches no target: ansible's
# own start and end, part of every ad-hoc call. Each ad-hoc line gives
# over_start_ms, its wall beyond that, and vs_systemd_service_over_start,
# the ratio of those parts: what the task itself costs, which the wall ratio
# blurs when ansible's start is a large part of both.
# Scenarios alternate; medians of BENCH_REPEATS (default 8).
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
setup_for lab

repeats="${BENCH_REPEATS:-8}"
lab="bench-dispatch-$$"
work="$(mktemp -d /var/tmp/bench-dispatch.XXXXXX)"
logs="$REPO_ROOT/.build/bench"
mkdir -p "$logs"
trap 'lab_down "$lab" "$logs"; rm -rf "$work"' EXIT
inventory="$(tests/lab/lab.sh up --name "$lab" --hosts 1 | tail -n1)"
ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
export ANSIBLE_COLLECTIONS_PATH ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_NOCOLOR=1
# What the target received, counted on the host side of h1's veth.
subnet="$(sed -n 's/^SUBNET=//p' "$(dirname "$inventory")/lab.env")"
host_rx_bytes "$subnet" 1 >/dev/null || { echo "bench dispatch: $lab's h1 cannot be counted" >&2; exit 1; }
tx() { host_rx_bytes "$subnet" 1; }

# play MODULE NAME STATE: a play of twenty tasks (the module name cannot be a variable).
play() {
	cat <<PLAY
---
- name: Twenty tasks on one host
  hosts: h1
  gather_facts: false
  tasks:
    - name: Twenty calls
      $1:
        name: $2
        state: $3
      loop: "{{ range(20) | list }}"
PLAY
}
play chezlepro.sovereign.bluegreen_unit bench-x absent >"$work/play-bluegreen_unit.yml"
play ansible.builtin.systemd_service ssh started >"$work/play-systemd_service.yml"

# scenario KIND MODULE MODE: one run; prints "ms bytes".
scenario() {
	local kind="$1" module="$2" mode="$3" t0 b0 env=() extra=()
	if [ "$module" = bluegreen_unit ]; then
		extra=(-e chezlepro_sovereign_platform=linux_amd64)
		[ "$mode" = plain ] && extra+=(-e chezlepro_sovereign_module_cache=false)
		if [ "$mode" = first ]; then
			tests/lab/lab.sh ssh --name "$lab" h1 rm -rf /root/.ansible/chezlepro_sovereign
		fi
	else
		env=(ANSIBLE_PIPELINING=1)
	fi
	b0=$(tx)
	t0=$(date +%s%N)
	if [ "$kind" = task ]; then
		if [ "$module" = debug ]; then
			ansible -i "$inventory" h1 -m ansible.builtin.debug -a "msg=start"
		elif [ "$module" = bluegreen_unit ]; then
			env "${env[@]}" ansible -i "$inventory" h1 "${extra[@]}" -m chezlepro.sovereign.bluegreen_unit -a "name=bench-x state=absent"
		else
			env "${env[@]}" ansible -i "$inventory" h1 -m ansible.builtin.systemd_service -a "name=ssh state=started"
		fi
	else
		env "${env[@]}" ansible-playbook -i "$inventory" "${extra[@]}" "$work/play-$module.yml"
	fi >"$work/out" 2>&1 || { echo "bench dispatch: $kind $module $mode failed:" >&2; tail -n 20 "$work/out" >&2; exit 1; }
	echo "$((($(date +%s%N) - t0) / 1000000)) $(($(tx) - b0))"
}

scenarios=("task debug -" "task systemd_service -" "task bluegreen_unit first" "task bluegreen_unit cached" "task bluegreen_unit plain"
	"play systemd_service -" "play bluegreen_unit first" "play bluegreen_unit cached" "play bluegreen_unit plain")
# Warm-up: the ssh master, the page cache, the host's first systemd answers.
scenario task systemd_service - >/dev/null
for ((i = 0; i < repeats; i++)); do
	for s in "${scenarios[@]}"; do
		# shellcheck disable=SC2086 # three words
		read -r ms bytes < <(scenario $s)
		key="${s// /_}"
		echo "$ms" >>"$work/$key.ms"
		echo "$bytes" >>"$work/$key.bytes"
	done
done
for s in "${scenarios[@]}"; do
	read -r kind module mode <<<"$s"
	key="${s// /_}"
	ms="$(median <"$work/$key.ms")"
	bytes="$(median <"$work/$key.bytes")"
	if [ "$module" = debug ]; then
		start_ms="$ms"
		echo "bench: task start=ansible.builtin.debug wall_ms_p50=$ms runs=$repeats"
		continue
	fi
	# The baseline of each kind comes first in scenarios.
	[ "$module" = systemd_service ] && baseline_ms="$ms"
	modeword=""
	[ "$mode" = - ] || modeword=" mode=$mode"
	ratio="$(awk -v m="$ms" -v b="$baseline_ms" 'BEGIN {printf "%.2f", m / b}')"
	if [ "$kind" = task ]; then
		over="$((ms - start_ms))"
		[ "$module" = systemd_service ] && baseline_over="$over"
		over_ratio="$(awk -v m="$over" -v b="$baseline_over" 'BEGIN {printf "%.2f", (b > 0 ? m / b : 0)}')"
		echo "bench: task module=$module$modeword wall_ms_p50=$ms bytes_to_target=$bytes vs_systemd_service=$ratio over_start_ms=$over vs_systemd_service_over_start=$over_ratio runs=$repeats"
	else
		echo "bench: task module=$module$modeword tasks=20 play_s=$(awk -v m="$ms" 'BEGIN {printf "%.2f", m / 1000}') bytes_to_target=$bytes vs_systemd_service=$ratio runs=$repeats"
	fi
done

# The controller's cost per task of naming the binary in the cache: its
# sha256 from bin/SHA256SUMS (make build) against hashing the 7 MB binary,
# which the plugin does when the sums file does not vouch for it.
cp -p "bin/bluegreen_unit_linux_$(go env GOARCH)" bin/SHA256SUMS "$work/"
/usr/bin/python3 - "$work" "bluegreen_unit_linux_$(go env GOARCH)" <<'PY'
import os, sys, time
sys.path.insert(0, "plugins/plugin_utils")
import module_cache

work, name = sys.argv[1:]
path = os.path.join(work, name)
ms = {}
for source in ("sums", "hash"):
    if source == "hash":
        os.remove(os.path.join(work, module_cache.SUMS))
    start = time.perf_counter()
    for _ in range(20):
        module_cache.binary_sha256(path)
    ms[source] = (time.perf_counter() - start) / 20 * 1000
print("bench: dispatch_sha256 from_sums_ms=%.2f hashing_ms=%.2f binary_bytes=%d runs=20" % (ms["sums"], ms["hash"], os.path.getsize(path)))
PY
