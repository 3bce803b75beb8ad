"""Shared fixtures: the benchmark in ../shared, CLI runner, small helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PLURALIGN_SHARED", ROOT.parent / "shared"))
HELPSTEER2 = Path(os.environ.get("PLURALIGN_BENCHMARK", SHARED / "data" / "helpsteer2"))
TARGETS = SHARED / "data" / "targets"


@pytest.fixture(scope="session")
def helpsteer2_dir() -> Path:
    if not (HELPSTEER2 / "eval.json").exists():
        pytest.skip(f"benchmark not found at {HELPSTEER2}")
    return HELPSTEER2


@pytest.fixture(scope="session")
def targets_dir() -> Path:
    return TARGETS


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pluralign", *args],
        capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli
