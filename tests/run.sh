#!/usr/bin/env bash
# make test and make check: runs the named make targets one after another,
# each to its end even when an earlier one failed, then prints what each
# counted and the closing line over all of them:
#   N passed, N failed, N skipped
# A suite counts its checks through tests/lib.sh's summary (TEST_RESULTS); a
# target that counts nothing of its own (fuzz) is one check, passed or failed
# by its exit status, as is a suite that exits non-zero with no failure
# counted. Exits non-zero when anything failed.
#
#   tests/run.sh TARGET...      (the caller runs tests/setup.sh first)
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
[ $# -gt 0 ] || { echo "usage: tests/run.sh TARGET..." >&2; exit 2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
lines=()
start=$(date +%s)
for target in "$@"; do
	printf '\n===== make %s\n' "$target"
	t0=$(date +%s)
	results="$work/$target"
	: >"$results"
	rc=0
	TEST_RESULTS="$results" "${MAKE:-make}" --no-print-directory "$target" || rc=$?
	read -r p f s < <(awk '{ p += $1; f += $2; s += $3 } END { printf "%d %d %d\n", p, f, s }' "$results")
	if [ ! -s "$results" ]; then
		if [ "$rc" -eq 0 ]; then p=1; else f=1; fi
	elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1 # it stopped before counting its failure
	fi
	pass_count=$((pass_count + p))
	fail_count=$((fail_count + f))
	skip_count=$((skip_count + s))
	lines+=("$(printf '%-16s %4d passed, %d failed, %d skipped%s  (%d s)' "$target" "$p" "$f" "$s" \
		"$([ "$rc" -eq 0 ] || echo ", exit $rc")" "$(($(date +%s) - t0))")")
done
printf '\n===== summary (%d s)\n' "$(($(date +%s) - start))"
printf '%s\n' "${lines[@]}"
unset TEST_RESULTS
summary
