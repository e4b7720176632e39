#!/usr/bin/env bash
# End-to-end tests: real ansible-playbook runs against lab hosts that boot a
# real systemd as PID 1. Boots a lab, runs every playbook under
# tests/e2e/playbooks (or those named), tears the lab down on any exit.
#
#   tests/e2e/run.sh [--lab NAME] [--keep] [PLAYBOOK ...]
#
# Playbooks run in groups, each on a fresh lab (see below).
# Every playbook gets these extra vars: lab_name, lab_sh (the lab tool, for
# reboots), repo_root. Output of each run goes to .build/e2e/<playbook>.log.
# A playbook says what cannot run on these hosts with a debug msg "SKIP: why":
# it is printed and counted as skipped.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"

# A name of its own per run: two runs on one machine (a CI job beside a
# developer's run) must neither collide nor tear down each other's lab.
lab="e2e-$$"
lab_started=false
keep=false
playbooks=()
while [ $# -gt 0 ]; do
	case "$1" in
	--lab) lab="$2"; shift 2 ;;
	--keep) keep=true; shift ;;
	-h | --help) sed -n '2,10p' "$0"; exit 0 ;;
	*) playbooks+=("$1"); shift ;;
	esac
done
if [ ${#playbooks[@]} -eq 0 ]; then
	mapfile -t playbooks < <(ls tests/e2e/playbooks/*.yml)
fi

setup_for lab
lab_sh="$REPO_ROOT/tests/lab/lab.sh"
logs="$REPO_ROOT/.build/e2e"
mkdir -p "$logs"

teardown() {
	if $lab_started && ! $keep; then
		lab_down "$lab" "$logs"
	fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
# The Go toolchain archive the pipeline's build host installs (go_toolchain
# role): made once from this machine's /usr/local/go, cached in .build/.
tests/toolchain/archive.sh >/dev/null
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
		echo "lab $lab up for the $group playbooks in $(($(date +%s) - t0)) s, inventory $inventory"
		current_group="$group"
	fi
	t0=$(date +%s%N)
	if ansible-playbook -i "$inventory" -e "lab_name=$lab" -e "lab_sh=$lab_sh" -e "repo_root=$REPO_ROOT" \
		-vvv "$pb" >"$logs/$name.log" 2>&1; then
		pass "$name ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
	else
		fail "$name ($(( ($(date +%s%N) - t0) / 1000000 )) ms): last lines of $logs/$name.log:"
		grep -E '^(fatal|failed|TASK|.*"msg")' "$logs/$name.log" | tail -n 20 | sed 's/^/      /'
	fi
	# A playbook says what cannot run on these hosts with a debug "SKIP: why".
	mapfile -t skipped < <(grep -o '"msg": "SKIP: [^"]*' "$logs/$name.log" | sed 's/^"msg": "SKIP: //' | sort -u)
	for why in "${skipped[@]}"; do skip "$name: $why"; done
	if [ "$name" = dispatch ]; then
		if grep -q "the output has been hidden due to the fact that 'no_log: true'" "$logs/$name.log" &&
			! grep -q nolog-marker-7f3a "$logs/$name.log"; then
			pass "dispatch: no_log hides the module's result even at -vvv"
		else
			fail "dispatch: no_log task's output leaked into the -vvv log (or no censored notice)"
		fi
		# At most one platform probe per host per run.
		probes="$(grep -c "EXEC .*uname -sm" "$logs/$name.log" || true)"
		hosts="$(grep -c ansible_host= "$inventory" || true)"
		if [ "$probes" -le "$hosts" ]; then
			pass "dispatch: $probes uname probes for $hosts hosts over the whole playbook"
		else
			fail "dispatch: $probes uname probes for $hosts hosts (want at most one per host)"
		fi
	fi
	if [ "$name" = dispatch_cache ]; then
		# Two tasks hit the same unusable cache: ansible prints the warning once.
		warned="$(grep -c '^\[WARNING\]: chezlepro.sovereign: the module cache /mnt/chz-noexec' "$logs/$name.log" || true)"
		if [ "$warned" -eq 1 ]; then
			pass "dispatch_cache: one warning for two tasks on an unusable cache"
		else
			fail "dispatch_cache: the unusable cache's warning was printed $warned times (want 1)"
		fi
	fi
done
echo "e2e total $(($(date +%s) - start)) s"
summary
