#!/usr/bin/env bash
# Set up (if needed), then make one real decision offline with the default judge
# (Qwen2.5-Coder-1.5B via llama.cpp, few-shot comparative regression with the default
# scoring: one greedy pass per response order, scores read from the judge's probabilities).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${PLURALIGN_VENV:-.venv}"
"$VENV/bin/pluralign" models fetch qwen2.5-coder-1.5b >/dev/null
exec "$VENV/bin/pluralign" choose --input examples/neighbour.json --target examples/target_care.json "$@"
