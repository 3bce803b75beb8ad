#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: a virtual environment with pluralign and every
# extra, llama.cpp built safely for this CPU and checked, the offline models, and (for the
# browser test) Debian's Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${PLURALIGN_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
# The CPU build of torch lies on local disk; asking for it first keeps pip from pulling a
# several-GB CUDA build when sentence-transformers or transformers ask for torch.
"$PY" -m pip install -q "torch==2.13.0"
# llama-cpp-python, compiled for this CPU's instruction sets without AMX (see the script;
# about 5-11 minutes the first time, then cached per CPU flag set in ~/.cache/pluralign).
PLURALIGN_SKIP_SMOKE=1 bash scripts/install_llama_cpp.sh "$PY"
"$PY" -m pip install -q -e ".[dev]"
if [ "${PLURALIGN_SKIP_CHROMIUM:-0}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
            || echo "warning: could not install chromium; the browser test will be skipped" >&2
    fi
fi
# PostgreSQL, for the tests of replicas sharing one database (the tests start their own server).
if [ "${PLURALIGN_SKIP_POSTGRES:-0}" != "1" ] && ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
            || echo "warning: could not install postgresql; its tests will fail in CI and be skipped elsewhere" >&2
    fi
fi
"$VENV/bin/pluralign" models fetch smollm2-135m >/dev/null
# Decode one token: says clearly what to do (and falls back to the AVX2 build) if llama.cpp
# cannot run on this CPU.
bash scripts/install_llama_cpp.sh "$PY"
