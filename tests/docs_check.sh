#!/usr/bin/env bash
# ansible-doc must render every module's sidecar documentation through the
# real collection loader. (The Go docscheck tests compare the documented
# options with the options structs.)
set -euo pipefail
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
setup_for check
ANSIBLE_COLLECTIONS_PATH="$(collection_path)"
export ANSIBLE_COLLECTIONS_PATH

NEWER_MARKUP='(^|[^A-Za-z0-9_])(O|V|RV|E|P)\([^)]*\)'
ANSIBLE_VERSION="$(ansible --version | sed -n '1s/.*core \([0-9.]*\).*/\1/p')"
# The roles' argument specs (ansible-doc -t role) are written in the same markup.
if raw="$(grep -noE "$NEWER_MARKUP" roles/*/meta/argument_specs.yml)"; then
	fail "roles' argument specs use markup ansible-core 2.14 cannot render: $(head -n 5 <<<"$raw" | tr '\n' ' ')"
else
	pass "roles' argument specs: markup ansible-core 2.14 renders"
fi

for m in "$@"; do
	out="$(ansible-doc -t module "chezlepro.sovereign.$m" 2>&1)" || { fail "ansible-doc $m: $out"; continue; }
	if grep -q "chezlepro.sovereign.$m" <<<"$out" && grep -q "OPTIONS" <<<"$out" && grep -q "EXAMPLES" <<<"$out"; then
		pass "ansible-doc renders $m"
	else
		fail "ansible-doc $m: output lacks name, OPTIONS or EXAMPLES: $out"
	fi
	# O(), V(), RV(), E(), P() need ansible-core 2.15: 2.14 prints them raw.
	if raw="$(grep -noE "$NEWER_MARKUP" <<<"$out")"; then
		fail "ansible-doc $m shows markup ansible-core $ANSIBLE_VERSION cannot render (use I(), C(), B(), M()): $(head -n 5 <<<"$raw" | tr '\n' ' ')"
	else
		pass "ansible-doc $m: no raw markup"
	fi
	json="$(ansible-doc -j -t module "chezlepro.sovereign.$m" 2>/dev/null)"
	if /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.read())[sys.argv[1]]
doc = d["doc"]
assert doc["options"], "no options"
assert "check_mode" in doc["attributes"] and "diff_mode" in doc["attributes"], "attributes"
assert d["examples"] and sys.argv[1] in d["examples"], "examples must use the FQCN"
assert d["return"], "no RETURN"
' "chezlepro.sovereign.$m" <<<"$json"; then
		pass "ansible-doc json of $m has options, attributes, FQCN examples, return"
	else
		fail "ansible-doc json of $m"
	fi
done
summary
