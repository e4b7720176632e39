#!/usr/bin/env bash
# Static checks: gofmt, go vet, Python syntax of the plugins, YAML docs,
# shell scripts, conditionals that are strings, and ansible-lint's
# production profile on the whole collection.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
setup_for check

unformatted="$(gofmt -l modules internal tests demo/webapp/*.go)"
if [ -n "$unformatted" ]; then
	fail "gofmt: these files need gofmt -w: $unformatted"
else
	pass "gofmt"
fi

if go vet ./... && (cd demo/webapp && go vet ./...); then pass "go vet"; else fail "go vet"; fi

if /usr/bin/python3 -m py_compile plugins/action/*.py plugins/plugin_utils/*.py; then
	pass "python plugins compile"
else
	fail "python plugins compile"
fi

# The linters are never skipped: setup_for check installs them.
if yamllint -d '{extends: default, rules: {line-length: {max: 160}, document-start: disable}}' \
	plugins/modules/*.yml meta/runtime.yml galaxy.yml; then
	pass "yamllint"
else
	fail "yamllint"
fi

mapfile -t scripts < <(git ls-files '*.sh' .ci/run | grep -v -E '(^|/)vendor/')
if shellcheck -x "${scripts[@]}"; then pass "shellcheck"; else fail "shellcheck"; fi

# Conditionals YAML reads as something else than a string (an unquoted
# ': ' makes a mapping, which 2.14 takes as true: an assertion that cannot
# fail). The check must first catch a planted one.
planted="$(mktemp --suffix=.yml)"
printf -- "- ansible.builtin.assert:\n    that:\n      - x is search('a: b')\n" >"$planted"
mapfile -t yamls < <(git ls-files '*.yml' '*.yaml' | grep -v -E '(^|/)vendor/')
if /usr/bin/python3 tests/conditionals_check.py "$planted" >/dev/null; then
	fail "conditionals check: it passed a planted unquoted that: x is search('a: b')"
elif /usr/bin/python3 tests/conditionals_check.py "${yamls[@]}"; then
	pass "conditionals (that, when, failed_when, changed_when, until) are strings: ${#yamls[@]} YAML files"
else
	fail "conditionals: quote the expressions above"
fi
rm -f "$planted"

# The whole collection, tests included, with the production profile and
# offline (.ansible-lint); its yaml rule runs yamllint. (It cannot load
# binary modules to check their arguments and warns so; the e2e playbooks
# do that.)
out="$(mktemp)"
rc=0
ANSIBLE_COLLECTIONS_PATH="$(collection_path)" ansible-lint -p >"$out" 2>&1 || rc=$?
grep -v -e '^WARNING  Unable to load module chezlepro\.sovereign\.' -e '^WARNING  Unable to resolve FQCN for module chezlepro\.sovereign\.' "$out" || true
rm -f "$out"
if [ "$rc" -eq 0 ]; then
	pass "ansible-lint (production profile, .ansible-lint): the whole collection"
else
	fail "ansible-lint (exit $rc)"
fi
summary
