#!/usr/bin/env bash
# make unit: the Go tests of the collection and of demo/webapp, offline from
# vendor/. Every top-level test is counted; a skipped one is printed with its
# reason (only what this machine cannot do: not root, no tmpfs mount, no
# network namespace, no Multipath TCP), and a missing tool fails naming its
# Debian package. Ends with "N passed, N failed, N skipped".
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
setup_for check
export GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rc=0
# PROMTOOL: Prometheus' own linter checks every rendered metrics file
# (extracted from Debian's prometheus package, never installed here).
# -tags faults: with the test-only fault hooks (binary_stage's kill tests);
# the shipped build's own test that it has none runs without.
PROMTOOL="$(tests/monitoring/promtool.sh)" go test -tags faults -count=1 -json ./... >"$work/go.json" 2>&1 || rc=$?
go test -count=1 -json -run '^TestShippedBuildHasNoFaultHook$' ./modules/binary_stage >>"$work/go.json" 2>&1 || rc=$?
(cd demo/webapp && go test -count=1 -json ./...) >>"$work/go.json" 2>&1 || rc=$?
python3 tests/gotest_summary.py <"$work/go.json" >"$work/summary"
sed '$d' "$work/summary"
read -r pass_count fail_count skip_count < <(tail -n1 "$work/summary")
# The offline kit's helper (roles/offline_kit/files/kit.py).
if python3 -m unittest discover -s tests/offline_kit >"$work/kit.log" 2>&1; then
	pass "offline kit: $(tail -n 3 "$work/kit.log" | grep -o 'Ran [0-9]* tests')"
else
	fail "offline kit's unit tests:"
	sed 's/^/      /' "$work/kit.log"
fi
# The module cache's remote commands, run with /bin/sh in scratch directories,
# and the action plugins' argument spec, on the Python ansible-core runs on.
if /usr/bin/python3 -m unittest discover -s tests/unit_py >"$work/py.log" 2>&1; then
	pass "module cache and argument spec: $(tail -n 3 "$work/py.log" | grep -o 'Ran [0-9]* tests')"
else
	fail "module cache's and argument spec's unit tests:"
	sed 's/^/      /' "$work/py.log"
fi
if [ "$rc" -ne 0 ] && [ "$fail_count" -eq 0 ]; then
	fail "go test exited $rc with no failed test reported (see above)"
fi
summary
