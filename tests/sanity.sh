#!/usr/bin/env bash
# make sanity: ansible-test sanity, the checks of the ecosystem (ansible-core's
# own test runner, here Debian's), offline. It needs the collection under a
# path ending in ansible_collections/chezlepro/sovereign: a scratch copy of
# the checkout's files (tracked and new ones, not the git-ignored build
# output such as the per-platform binaries) under .build/sanity/, made a
# git repository of its own.
# ansible-test fills each test's virtual environment from PyPI, which is not
# reachable here: tests/sanity/offline_venvs.py makes them from the Debian
# packages tests/setup.sh installs instead. Its state (HOME) stays in
# .build/sanity/ too. Ignore entries: tests/sanity/ignore-X.Y.txt.
#
#   tests/sanity.sh [--ansible SERIES] [ansible-test sanity options]   e.g. --test validate-modules
#
# It runs the ansible-test on PATH, with the ansible_test package Python
# finds (PYTHONPATH), so another ansible-core unpacked beside Debian's runs
# it too (tests/sanity/ignore-2.19.txt is for 2.19). --ansible 2.19 runs
# trixie's (tests/setup.sh ansible-2.19), with trixie's pylint 3 beside it
# (sanity-2.19) for its pylint test.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
series=""
if [ "${1:-}" = --ansible ]; then
	series="${2:?--ansible SERIES}"
	shift 2
fi
case "$series" in
"" | 2.14) setup_for check ;;
*)
	setup_for check "ansible-$series" "sanity-$series"
	bin="$(tests/setup.sh --ansible-bin "$series")"
	CHEZLEPRO_SANITY_SITE="$(tests/setup.sh --sanity-site "$series")"
	PYTHONPATH="$(dirname "$bin")/usr/lib/python3/dist-packages:$CHEZLEPRO_SANITY_SITE${PYTHONPATH:+:$PYTHONPATH}"
	export PATH="$bin:$PATH" PYTHONPATH CHEZLEPRO_SANITY_SITE
	;;
esac

# The tests whose environments pip would fill; import.* are the import
# test's own two.
VENV_TESTS=(ansible-doc import import.module import.plugin pep8 pylint runtime-metadata validate-modules yamllint)
# changelog needs antsibull-changelog, which Debian 12 does not package and
# PyPI is out of reach: it cannot run here.
SKIPPED_TESTS=(changelog)

base="$REPO_ROOT/.build/sanity"
copy="$base/ansible_collections/chezlepro/sovereign"
rm -rf "$copy"
mkdir -p "$copy" "$base/home"
mapfile -d '' listed < <(git ls-files -z -co --exclude-standard)
files=()
for f in "${listed[@]}"; do
	[ -e "$f" ] && files+=("$f") # a deleted file stays listed until staged
done
tar -cf - "${files[@]}" | tar -xf - -C "$copy"
# A repository of its own: ansible-test lists a git checkout's files with
# git, and inside this one .build/ is ignored.
git -C "$copy" init -q
git -C "$copy" add -A

python="$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
export HOME="$base/home"
cd "$copy"
/usr/bin/python3 tests/sanity/offline_venvs.py "${VENV_TESTS[@]}"
# Tests whose tool the system lacks or has too old for this ansible-test
# (2.19's validate-modules needs antsibull-docs-parser, which no Debian
# suite packages; its pylint 3 comes from trixie): skipped, saying why.
mapfile -t unrunnable < <(/usr/bin/python3 tests/sanity/offline_venvs.py --unrunnable "${VENV_TESTS[@]}")
for line in "${unrunnable[@]}"; do SKIPPED_TESTS+=("${line%%:*}"); done
skip_args=()
for t in "${SKIPPED_TESTS[@]}"; do skip_args+=(--skip-test "$t"); done
out="$base/sanity${series:+-$series}.log"
rc=0
ansible-test sanity --python "$python" --color no "${skip_args[@]}" "$@" >"$out" 2>&1 || rc=$?
grep -v -e '^WARNING: Using locale' -e '^WARNING: Reviewing previous' "$out" || true
version="$(ansible --version | sed -n '1s/.*core \([0-9]*\.[0-9]*\).*/\1/p')"
if [ "$rc" -eq 0 ]; then
	pass "ansible-test sanity $version: $(grep -c '^Running sanity test' "$out") tests"
else
	fail "ansible-test sanity $version (exit $rc): $(sed -n '/^FATAL: The .* sanity test/,$p' "$out" | tail -n +2 | tr '\n' ' ')"
fi
skip "ansible-test sanity --test changelog: needs antsibull-changelog, which Debian $(cut -d. -f1 /etc/debian_version) does not package (and PyPI is out of reach)"
for line in "${unrunnable[@]}"; do skip "ansible-test sanity --test ${line%%:*} (${version}):${line#*:}"; done
summary
