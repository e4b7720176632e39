# Shared helpers for the test scripts (sourced, not run).
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The Go toolchain tests/setup.sh chose (/usr/local/go, or the pinned one it
# fetched); the labs bind it into their hosts at /usr/local/go.
GO_ROOT="${GO_ROOT:-$("$REPO_ROOT/tests/setup.sh" --go-root)}"
export GO_ROOT PATH="$GO_ROOT/bin:$PATH"

# Debian's ansible runs on /usr/bin/python3; a python3 earlier in PATH (pyenv)
# must not shadow the one ansible-core is installed for.
export ANSIBLE_PYTHON_INTERPRETER=auto_silent

# setup_for GROUP...: what the calling suite needs, installed when missing
# (tests/setup.sh lists the groups).
setup_for() { "$REPO_ROOT/tests/setup.sh" "$@"; }

# module_defaults MODULE: MODULE's arguments (JSON on stdin) with the
# defaults the action plugin applies from its sidecar, as its binary run
# without Ansible (the benchmarks) expects them.
module_defaults() {
	/usr/bin/python3 -c 'import json, sys
sys.path.insert(0, sys.argv[1])
import argument_spec
try:
    json.dump(argument_spec.validate(sys.argv[2], json.load(sys.stdin)), sys.stdout)
except (ValueError, argument_spec.ArgumentsError) as e:
    sys.exit("module_defaults %s: %s" % (sys.argv[2], e))' "$REPO_ROOT/plugins/plugin_utils" "$1"
}

# host_rx_bytes SUBNET N: the bytes lab host hN (of the lab on SUBNET, from
# its lab.env) has received so far: what the host side of its veth, named
# as tests/lab/lab.sh names it, transmitted. Fails naming the veth when
# there is none.
host_rx_bytes() {
	local f="/sys/class/net/chzlab$1h$2/statistics/tx_bytes"
	[ -r "$f" ] || { echo "no veth chzlab$1h$2 for lab host h$2" >&2; return 1; }
	cat "$f"
}

pass_count=0
fail_count=0
skip_count=0

pass() { pass_count=$((pass_count + 1)); printf 'PASS  %s\n' "$*"; }
fail() { fail_count=$((fail_count + 1)); printf 'FAIL  %s\n' "$*"; }
# skip WHAT: WHY: only for what cannot run on this machine (no KVM...), never
# for a missing tool (tests/setup.sh installs those).
skip() { skip_count=$((skip_count + 1)); printf 'SKIP  %s\n' "$*"; }

# summary prints the closing line CI reads and returns non-zero on failure.
# Under tests/run.sh (TEST_RESULTS set) it also adds the counts to its total.
summary() {
	printf '%d passed, %d failed, %d skipped\n' "$pass_count" "$fail_count" "$skip_count"
	if [ -n "${TEST_RESULTS:-}" ]; then
		printf '%d %d %d\n' "$pass_count" "$fail_count" "$skip_count" >>"$TEST_RESULTS"
	fi
	[ "$fail_count" -eq 0 ]
}

# collection_path makes the checkout importable as chezlepro.sovereign and
# prints the path to put in ANSIBLE_COLLECTIONS_PATH.
collection_path() {
	local base="$REPO_ROOT/.build/collections"
	mkdir -p "$base/ansible_collections/chezlepro"
	# Made only when not already right: runs at the same time (e2e on two
	# ansible-core series) would race in ln's unlink-then-link.
	[ "$(readlink "$base/ansible_collections/chezlepro/sovereign")" = "$REPO_ROOT" ] ||
		ln -sfn "$REPO_ROOT" "$base/ansible_collections/chezlepro/sovereign"
	printf '%s\n' "$base"
}

# lab_down LAB LOGDIR tears a lab down, its output kept in LOGDIR/lab-down.log.
lab_down() {
	"$REPO_ROOT/tests/lab/lab.sh" down --name "$1" >"$2/lab-down.log" 2>&1 ||
		echo "lab teardown failed: see $2/lab-down.log" >&2
}

# median: the median of the integers on stdin, one a line (for an even
# count, the integer mean of the middle two): the benchmarks' medians.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }
