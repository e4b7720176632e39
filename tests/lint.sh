#!/bin/bash
# Static checks: gofmt, go vet, Python syntax of the plugins, YAML docs,
# shell scripts, and ansible-lint's production profile on the roles,
# playbooks and example inventory.
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

# An unquoted conditional holding ': ' is a mapping to YAML: ansible-core
# 2.14 takes it as true whatever it says, 2.19 refuses it. The check must
# see a planted one, then none in the repository.
planted="$(mktemp --suffix=.yml)"
printf -- '- ansible.builtin.assert:\n    that:\n      - out is search("a: b")\n' >"$planted"
if /usr/bin/python3 tests/conditionals_check.py "$planted" 2>&1 | grep -q "^$planted:3: that: YAML reads this as a mapping" &&
	/usr/bin/python3 tests/conditionals_check.py; then
	pass "conditionals are strings (when, that, failed_when, changed_when, until)"
else
	fail "conditionals: tests/conditionals_check.py (above)"
fi
rm -f "$planted"

mapfile -t scripts < <(git ls-files '*.sh' .ci/run | grep -v -E '(^|/)vendor/')
if shellcheck -x "${scripts[@]}"; then pass "shellcheck"; else fail "shellcheck"; fi

# Its yaml rule runs yamllint over the same files. --offline: nothing is
# fetched. (It cannot load binary modules to check their arguments and
# warns so; the e2e playbooks do that.)
out="$(mktemp)"
rc=0
ANSIBLE_COLLECTIONS_PATH="$(collection_path)" ansible-lint --offline -p roles playbooks inventories/example >"$out" 2>&1 || rc=$?
grep -v -e '^WARNING  Unable to load module chezlepro\.sovereign\.' -e '^WARNING  Unable to resolve FQCN for module chezlepro\.sovereign\.' "$out" || true
rm -f "$out"
if [ "$rc" -eq 0 ]; then
	pass "ansible-lint (production profile): roles, playbooks, inventories/example"
else
	fail "ansible-lint (exit $rc)"
fi
summary
