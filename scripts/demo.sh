#!/usr/bin/env bash
# Set up (if needed), then show steering offline with the default judge (Qwen2.5-Coder-1.5B via
# llama.cpp, few-shot comparative regression, one greedy pass per response order): one question,
# two people with different values, two different choices, each with its reason and confidence.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${PLURALIGN_VENV:-.venv}"
"$VENV/bin/pluralign" models fetch qwen2.5-coder-1.5b >/dev/null
echo "== Alex wants every applicant judged on merit (target examples/target_alex.json: fairness 1.0)"
"$VENV/bin/pluralign" choose --input examples/hiring.json --target examples/target_alex.json "$@"
echo
echo "== Sam puts favours to friends first (target examples/target_sam.json: fairness 0.0)"
exec "$VENV/bin/pluralign" choose --input examples/hiring.json --target examples/target_sam.json "$@"
