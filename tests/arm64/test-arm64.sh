#!/usr/bin/env bash
# make test-arm64: the arm64 binaries on an arm64 host, for real. Boots one
# arm64 lab host (tests/lab/lab.sh up --arch arm64: Debian 12 arm64, its
# systemd as PID 1, every arm64 program run by qemu-user through a
# binfmt_misc of the host's own user namespace, the machine's untouched),
# then runs the dispatch e2e (tests/e2e/playbooks/dispatch.yml) and a
# bluegreen_unit deploy and flip (tests/arm64/flip.yml) on it, with the
# system's ansible-core. Where the machine cannot run arm64 hosts it says
# "SKIP arm64: why" and counts it skipped.
#
# Prints "bench: arm64 ..." with the wall times: the lab's up (with the
# arm64 rootfs build the first time, cached after), each playbook, the whole
# test. Logs in .build/arm64/.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
setup_for lab arm64

lab="arm-$$"
logs="$REPO_ROOT/.build/arm64"
e2e_work="$logs/work"
lab_sh="$REPO_ROOT/tests/lab/lab.sh"
mkdir -p "$logs" "$e2e_work"
start=$(date +%s)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

if ! why="$("$lab_sh" arm64-check 2>&1)"; then
	skip "arm64: $why"
	summary
	exit
fi

lab_started=false
# shellcheck disable=SC2317 # run by the trap
teardown() { if $lab_started; then lab_down "$lab" "$logs"; fi; }
trap teardown EXIT
trap 'exit 130' INT TERM

for b in binary_stage bluegreen_unit source_build; do
	[ -f "bin/${b}_linux_arm64" ] || { fail "bin/${b}_linux_arm64 is missing: run make build"; summary; exit; }
done
rootfs=warm
"$lab_sh" rootfs-cached --arch arm64 || rootfs=cold
t0=$(date +%s%N)
lab_started=true
if ! inventory="$("$lab_sh" up --name "$lab" --hosts 1 --arch arm64 --bind-ro "$GO_ROOT:/usr/local/go" 2>"$logs/lab-up.log" | tail -n1)"; then
	fail "arm64 lab up: last lines of $logs/lab-up.log:"
	tail -n 20 "$logs/lab-up.log" | sed 's/^/      /'
	summary
	exit
fi
up_ms=$(ms_since "$t0")
pass "arm64 lab up ($up_ms ms, rootfs $rootfs)"

machine="$("$lab_sh" ssh --name "$lab" h1 uname -m 2>&1)" || true
if [ "$machine" = aarch64 ]; then
	pass "the arm64 host says uname -m = aarch64"
else
	fail "the arm64 host says uname -m = '$machine' (want aarch64)"
fi
# The handler lives in the host's user namespace, not in the machine's own
# binfmt_misc (where it would make the amd64 lab hosts run arm64 binaries).
handlers="$(find /proc/sys/fs/binfmt_misc/ -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)" || true
if [[ ${handlers,,} == *aarch64* ]]; then
	fail "this machine's own binfmt_misc has an aarch64 handler: $handlers"
else
	pass "this machine's own binfmt_misc has no aarch64 handler: the arm64 host's is its own"
fi

ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
export ANSIBLE_COLLECTIONS_PATH
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_HOST_KEY_CHECKING=0
timings=()
for pb in tests/e2e/playbooks/dispatch.yml tests/arm64/flip.yml; do
	name="$(basename "$pb" .yml)"
	t0=$(date +%s%N)
	if ansible-playbook -i "$inventory" -e "lab_name=$lab" -e "lab_sh=$lab_sh" -e "repo_root=$REPO_ROOT" \
		-e "e2e_work=$e2e_work" -vvv "$pb" >"$logs/$name.log" 2>&1; then
		pass "[arm64] $name ($(ms_since "$t0") ms)"
	else
		fail "[arm64] $name ($(ms_since "$t0") ms): last lines of $logs/$name.log:"
		grep -E '^(fatal|failed|TASK|.*"msg")' "$logs/$name.log" | tail -n 20 | sed 's/^/      /'
	fi
	timings+=("${name}_ms=$(ms_since "$t0")")
	mapfile -t skipped < <(grep -o '"msg": "SKIP: [^"]*' "$logs/$name.log" | sed 's/^"msg": "SKIP: //' | sort -u)
	for why in "${skipped[@]}"; do skip "[arm64] $name: $why"; done
done
echo "bench: arm64 rootfs=$rootfs lab_up_ms=$up_ms ${timings[*]} total_s=$(($(date +%s) - start))"
summary
