#!/bin/bash
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
go test -count=1 -json ./... >"$work/go.json" 2>&1 || rc=$?
(cd demo/webapp && go test -count=1 -json ./...) >>"$work/go.json" 2>&1 || rc=$?
python3 tests/gotest_summary.py <"$work/go.json" >"$work/summary"
sed '$d' "$work/summary"
read -r pass_count fail_count skip_count < <(tail -n1 "$work/summary")
if [ "$rc" -ne 0 ] && [ "$fail_count" -eq 0 ]; then
	fail "go test exited $rc with no failed test reported (see above)"
fi
summary
