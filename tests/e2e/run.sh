#!/usr/bin/env bash
# End-to-end tests: real ansible-playbook runs against lab hosts that boot a
# real systemd as PID 1. Boots a lab, runs every playbook under
# tests/e2e/playbooks (or those named), tears the lab down on any exit.
#
#   tests/e2e/run.sh [--ansible SERIES[,SERIES]] [--lab NAME] [--keep] [PLAYBOOK ...]
#
# --ansible: the ansible-core the controller runs: 2.14 (Debian 12's, the
# system's) or 2.19 (Debian trixie's, beside it: tests/setup.sh ansible-2.19);
# default both, at the same time, each on labs of its own (2 x 3 hosts):
# on the 2-core machine, loaded, both at once took 1.20-1.25 times the wall
# of 2.14 alone. Result lines name the series ("PASS  [2.19] NAME"); the
# closing line counts both.
# Playbooks run in groups, each on a fresh lab (see below).
# A playbook with a line "# e2e: fault-enabled binaries" runs against
# .build/faults' copy of the collection (make faults), whose binary_stage has
# its test-only fault hook; bin/ never has it.
# Every playbook gets these extra vars: lab_name, lab_sh (the lab tool, for
# reboots), repo_root, e2e_work (the run's scratch directory on the
# controller). Output of each run goes to .build/e2e/<playbook>.log (2.14),
# .build/e2e-SERIES/<playbook>.log (others).
# A playbook says what cannot run on these hosts with a debug msg "SKIP: why":
# it is printed and counted as skipped.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

# A name of its own per run: two runs on one machine (a CI job beside a
# developer's run) must neither collide nor tear down each other's lab.
lab="e2e-$$"
lab_given=""
lab_started=false
keep=false
playbooks=()
all_series=()
while [ $# -gt 0 ]; do
	case "$1" in
	--ansible) IFS=, read -ra more <<<"$2"; all_series+=("${more[@]}"); shift 2 ;;
	--lab) lab="$2"; lab_given="$2"; shift 2 ;;
	--keep) keep=true; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
	*) playbooks+=("$1"); shift ;;
	esac
done
if [ ${#playbooks[@]} -eq 0 ]; then
	mapfile -t playbooks < <(ls tests/e2e/playbooks/*.yml)
fi
# A playbook is a path, or a name under tests/e2e/playbooks/.
for i in "${!playbooks[@]}"; do
	pb="${playbooks[$i]}"
	[ -f "$pb" ] || [ ! -f "tests/e2e/playbooks/$pb" ] || pb="tests/e2e/playbooks/$pb"
	[ -f "$pb" ] || { echo "run.sh: $pb: no such playbook (a path, or a name under tests/e2e/playbooks/)" >&2; exit 2; }
	playbooks[i]="$pb"
done
[ ${#all_series[@]} -gt 0 ] || all_series=(2.14 2.19)
mapfile -t all_series < <(printf '%s\n' "${all_series[@]}" | sort -uV)
extra_groups=()
for s in "${all_series[@]}"; do
	case "$s" in
	2.14) ;;
	2.19) extra_groups+=("ansible-$s") ;;
	*) echo "run.sh: --ansible $s: the series are 2.14 and 2.19" >&2; exit 2 ;;
	esac
done

setup_for lab "${extra_groups[@]}"
# The Go toolchain archive the pipeline's build host installs (go_toolchain
# role): made once from this machine's /usr/local/go, cached in .build/.
tests/toolchain/archive.sh >/dev/null
# Playbooks that kill a module through its test-only fault hook run against
# a copy of the collection whose binaries have it (make faults); built once,
# under a lock, as both series' runs start here at the same time.
# fault_enabled PLAYBOOK...: whether one of them carries the marker.
fault_enabled() { grep -q '^# e2e: fault-enabled binaries' "$@"; }
if fault_enabled "${playbooks[@]}"; then
	mkdir -p .build
	flock .build/faults.lock make -s faults >/dev/null
fi

if [ ${#all_series[@]} -gt 1 ]; then
	# Each series in a run of its own, all at once: their labs, logs and
	# controller scratch are apart; each adds its counts to a file here.
	results="$(mktemp -d)"
	pids=()
	# shellcheck disable=SC2317 # run by the trap
	stop() {
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait
		exit 130
	}
	trap stop INT TERM
	trap 'rm -rf "$results"' EXIT
	start=$(date +%s)
	for s in "${all_series[@]}"; do
		args=(--ansible "$s")
		$keep && args+=(--keep)
		[ -z "$lab_given" ] || args+=(--lab "$lab_given-${s//./}")
		TEST_RESULTS="$results/$s" "$0" "${args[@]}" "${playbooks[@]}" &
		pids+=($!)
	done
	for i in "${!all_series[@]}"; do
		rc=0
		wait "${pids[$i]}" || rc=$?
		if [ -s "$results/${all_series[$i]}" ]; then
			read -r p f k < <(awk '{ p += $1; f += $2; k += $3 } END { print p, f, k }' "$results/${all_series[$i]}")
			pass_count=$((pass_count + p)) fail_count=$((fail_count + f)) skip_count=$((skip_count + k))
		else
			fail "[${all_series[$i]}] the run stopped (exit $rc) before counting its results"
		fi
	done
	echo "e2e total $(($(date +%s) - start)) s on ansible-core ${all_series[*]} at once"
	summary
	exit
fi

# One series from here on.
series="${all_series[0]}"
bin="$(tests/setup.sh --ansible-bin "$series")"
[ "$bin" = /usr/bin ] || export PATH="$bin:$PATH"
version="$(ansible-playbook --version | sed -n '1s/.*\[core \([^]]*\)\].*/\1/p')"
case "$version" in
"$series".*) ;;
*) echo "run.sh: --ansible $series: ansible-playbook on PATH is ansible-core '$version'" >&2; exit 1 ;;
esac
lab_sh="$REPO_ROOT/tests/lab/lab.sh"
logs="$REPO_ROOT/.build/e2e"
[ "$series" = 2.14 ] || logs+="-$series"
# Controller-side files the playbooks make (builds, keys, examples): apart
# per series, as their runs go at the same time.
e2e_work="$logs/work"
mkdir -p "$logs" "$e2e_work"

teardown() {
	if $lab_started && ! $keep; then
		lab_down "$lab" "$logs"
	fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
echo "e2e on ansible-core $version ($(command -v ansible-playbook)), logs in $logs"
ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
export ANSIBLE_COLLECTIONS_PATH
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0

# Each group of playbooks (the name up to its first "_": binary_stage_*,
# bluegreen_unit_*, pipeline_*, ...) gets a freshly booted lab, so what one
# module's tests leave running (a service on a port, say) cannot decide
# another's outcome. A lab boots in a few seconds.
current_group=""
inventory=""
for pb in "${playbooks[@]}"; do
	name="$(basename "$pb" .yml)"
	group="${name%%_*}"
	if [ "$group" != "$current_group" ]; then
		if [ -n "$current_group" ]; then
			lab_down "$lab" "$logs"
		fi
		t0=$(date +%s)
		lab_started=true
		# The build host needs a Go toolchain: the controller's, read-only.
		inventory="$("$lab_sh" up --name "$lab" --hosts 3 --bind-ro "$GO_ROOT:/usr/local/go" | tail -n1)"
		echo "[$series] lab $lab up for the $group playbooks in $(($(date +%s) - t0)) s, inventory $inventory"
		current_group="$group"
	fi
	t0=$(date +%s%N)
	collections="$ANSIBLE_COLLECTIONS_PATH"
	! fault_enabled "$pb" || collections="$REPO_ROOT/.build/faults/collections"
	if ANSIBLE_COLLECTIONS_PATH="$collections" ansible-playbook -i "$inventory" -e "lab_name=$lab" -e "lab_sh=$lab_sh" -e "repo_root=$REPO_ROOT" \
		-e "e2e_work=$e2e_work" -vvv "$pb" >"$logs/$name.log" 2>&1; then
		pass "[$series] $name ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
	else
		fail "[$series] $name ($(( ($(date +%s%N) - t0) / 1000000 )) ms): last lines of $logs/$name.log:"
		grep -E '^(fatal|failed|TASK|.*"msg")' "$logs/$name.log" | tail -n 20 | sed 's/^/      /'
	fi
	# A playbook says what cannot run on these hosts with a debug "SKIP: why".
	mapfile -t skipped < <(grep -o '"msg": "SKIP: [^"]*' "$logs/$name.log" | sed 's/^"msg": "SKIP: //' | sort -u)
	for why in "${skipped[@]}"; do skip "[$series] $name: $why"; done
	if [ "$name" = dispatch ]; then
		if grep -q "the output has been hidden due to the fact that 'no_log: true'" "$logs/$name.log" &&
			! grep -q nolog-marker-7f3a "$logs/$name.log"; then
			pass "[$series] dispatch: no_log hides the module's result even at -vvv"
		else
			fail "[$series] dispatch: no_log task's output leaked into the -vvv log (or no censored notice)"
		fi
		# At most one platform probe per host per run.
		probes="$(grep -c "EXEC .*uname -sm" "$logs/$name.log" || true)"
		hosts="$(grep -c ansible_host= "$inventory" || true)"
		if [ "$probes" -le "$hosts" ]; then
			pass "[$series] dispatch: $probes uname probes for $hosts hosts over the whole playbook"
		else
			fail "[$series] dispatch: $probes uname probes for $hosts hosts (want at most one per host)"
		fi
	fi
	if [ "$name" = dispatch_cache ]; then
		# Two tasks hit the same unusable cache: ansible prints the warning once.
		warned="$(grep -c '^\[WARNING\]: chezlepro.sovereign: the module cache /mnt/chz-noexec' "$logs/$name.log" || true)"
		if [ "$warned" -eq 1 ]; then
			pass "[$series] dispatch_cache: one warning for two tasks on an unusable cache"
		else
			fail "[$series] dispatch_cache: the unusable cache's warning was printed $warned times (want 1)"
		fi
	fi
done
echo "[$series] e2e total $(($(date +%s) - start)) s"
printf '[%s] ' "$series"
summary
