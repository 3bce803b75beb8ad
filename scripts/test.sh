#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and type checks included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${PLURALIGN_VENV:-.venv}"
export PLURALIGN_BENCHMARK="${PLURALIGN_BENCHMARK:-$(cd .. && pwd)/shared/data/helpsteer2}"
"$VENV/bin/ruff" check src tests bench
"$VENV/bin/mypy"
NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --quiet --site-dir "$(mktemp -d)"   # the docs site, links and anchors checked
# Two workers (pytest-xdist): one test's single-threaded stretches (imports, server start-up,
# subprocess CLIs) overlap another's model work; PLURALIGN_TEST_WORKERS=0 runs in one process.
PLURALIGN_TEST_FORK=0 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -n "${PLURALIGN_TEST_WORKERS:-2}" --durations=25 "$@"
