"""Fixtures: the benchmark in ../shared, the CLI, real models and servers started on 127.0.0.1.

Tests that start a real model, a server or a browser form the slow tier; `pytest -m "not
slow"` runs the rest (pure Python, files, the CLI without a model) while you work, and the
README's test command runs both. A test is slow if it says so or uses one of SLOW_FIXTURES.
Helpers shared by tests live in ``support.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support import HELPSTEER2, TARGETS, Script, free_port, run_cli, start_scripted, wait_until_up

SLOW_FIXTURES = {"smollm2_path", "llamacpp_backend", "llama_server", "server", "hostile_service"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def helpsteer2_dir() -> Path:
    if not (HELPSTEER2 / "eval.json").exists():
        pytest.skip(f"benchmark not found at {HELPSTEER2}")
    return HELPSTEER2


@pytest.fixture(scope="session")
def targets_dir() -> Path:
    return TARGETS


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


# ---- real models and servers -------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from pluralign.prediction.weights import fetch

    return fetch("smollm2-135m")


@pytest.fixture(scope="session")
def llamacpp_backend(smollm2_path: Path):
    from pluralign.prediction.judges.llamacpp import LlamaCppBackend, LlamaCppOptions

    backend = LlamaCppBackend(str(smollm2_path), LlamaCppOptions(n_ctx=4096))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def llama_server(smollm2_path: Path):
    """A real OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1 with SmolLM2."""
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"llama_server_{port}.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(smollm2_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--model_alias",
            "smollm2",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_up(proc, f"{url}/models", 120)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[list[tuple]], tuple[str, Script]]]:
    """Start scripted servers (see ``support.start_scripted``); all are shut down afterwards."""
    servers = []

    def start(steps: list[tuple]) -> tuple[str, Script]:
        url, script, server = start_scripted(steps)
        servers.append(server)
        return url, script

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


# ---- a real PostgreSQL server ----------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[object]:
    """One PostgreSQL server for the session (each test makes its own database on it). Missing
    PostgreSQL skips on a developer's machine and fails in CI, where set-up installs it."""
    from postgres_server import PostgresServer, binaries

    if binaries() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; scripts/setup.sh installs it (apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs it)")
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture
def pg_url(postgres, request: pytest.FixtureRequest) -> str:
    """The URL of a new, empty database on the session's server."""
    import re

    name = re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:40] + f"_{os.getpid()}_{free_port()}"
    return postgres.create_database(name)  # type: ignore[attr-defined]
