#!/usr/bin/env bash
# The monitoring role's alert rules: `promtool check rules` (syntax, PromQL)
# and `promtool test rules` (each alert fires and resolves on given series),
# with promtool from Debian's prometheus package (promtool.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
promtool=$(tests/monitoring/promtool.sh)
"$promtool" check rules roles/monitoring/files/chezlepro.rules.yml
"$promtool" test rules tests/monitoring/rules_test.yml
