#!/bin/bash
# Static checks: gofmt, go vet, Python syntax of the plugins, YAML docs.
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

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

if command -v yamllint >/dev/null; then
	if yamllint -d '{extends: default, rules: {line-length: {max: 160}, document-start: disable}}' \
		plugins/modules/*.yml meta/runtime.yml galaxy.yml; then
		pass "yamllint"
	else
		fail "yamllint"
	fi
fi

if command -v shellcheck >/dev/null; then
	mapfile -t scripts < <(git ls-files '*.sh' .ci/run | grep -v -E '(^|/)vendor/')
	if shellcheck -x "${scripts[@]}"; then pass "shellcheck"; else fail "shellcheck"; fi
fi
summary
