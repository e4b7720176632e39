#!/usr/bin/env bash
# Runs every benchmark script under tests/bench/ (one per module). Each prints
# "bench: <scenario> key=value ..." lines comparing against the baseline a user
# would otherwise use, measured in the same run.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$REPO_ROOT"
setup_for lab
status=0
for b in tests/bench/*.sh; do
	[ "$(basename "$b")" = run.sh ] && continue
	echo "== $b"
	"$b" || { echo "benchmark $b failed" >&2; status=1; }
done
exit $status
