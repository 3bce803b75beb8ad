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


def wait_until_up(proc: subprocess.Popen, url: str, seconds: float) -> None:
    """Poll a freshly started server until url answers at all (a 401 from a server that wants
    a key counts); fail fast if the process dies."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            raise RuntimeError(f"the server exited with {proc.returncode}: {err}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


# Tests that start a real model, a server or a browser form the slow tier; `pytest -m "not
# slow"` runs the rest (pure Python, files, the CLI without a model) while you work, and the
# README's test command runs both. A test is slow if it says so or uses one of these fixtures.
SLOW_FIXTURES = {"smollm2_path", "llamacpp_backend", "llama_server", "server", "hostile_service", "scripted"}


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


# the smallest valid `pluralign choose` arguments, for tests about one more option
CHOOSE_ARGS = ["choose", "--target", '{"care": 1}', "--question", "q", "--response", "a", "--response", "b"]


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pluralign", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


# ---- real models and servers -------------------------------------------------------------

import json  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

import httpx  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from pluralign.judges.models import fetch

    return fetch("smollm2-135m")


@pytest.fixture(scope="session")
def llamacpp_backend(smollm2_path: Path):
    from pluralign.judges.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(str(smollm2_path), n_ctx=4096)
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


# ---- a scripted OpenAI-compatible server, to force faults ----------------------------------


class Script:
    """Responses to serve in order; the last one repeats."""

    def __init__(self, steps: list[tuple]) -> None:
        self.steps = steps
        self.hits = 0
        self.bodies: list[dict] = []
        self.arrivals: list[float] = []
        self.lock = threading.Lock()

    def next(self) -> tuple:
        with self.lock:
            step = self.steps[min(self.hits, len(self.steps) - 1)]
            self.hits += 1
            self.arrivals.append(time.monotonic())
            return step


def completion(content: str) -> bytes:
    return json.dumps(
        {
            "choices": [{"message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
        }
    ).encode()


@pytest.fixture
def scripted():
    servers = []

    def start(steps: list[tuple]) -> tuple[str, Script]:
        script = Script(steps)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                script.bodies.append(json.loads(self.rfile.read(int(self.headers.get("content-length", 0)))))
                kind, *rest = script.next()
                if kind == "hang":
                    time.sleep(rest[0])
                    return
                if kind == "drip":  # a 200 whose body never ends: one byte every rest[0] seconds
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "100000")
                    self.end_headers()
                    ends = time.monotonic() + rest[1]
                    try:
                        while time.monotonic() < ends:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                            time.sleep(rest[0])
                    except OSError:
                        pass
                    return
                if kind == "raw":  # status, headers and body bytes exactly as given
                    status, headers, body = rest
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if kind == "echo":  # an upstream that repeats the request's headers in its error
                    body = json.dumps({"error": f"bad key; you sent {dict(self.headers)}"}).encode()
                    status, headers = rest[0], {}
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if kind == "slow":  # answer well, after a while
                    time.sleep(rest[0])
                    kind, rest = "ok", rest[1:]
                if kind == "ok":
                    body, status, headers = completion(rest[0]), 200, {}
                elif kind == "payload":  # any JSON body, e.g. a completion with a broken usage
                    body, status, headers = json.dumps(rest[0]).encode(), 200, {}
                else:
                    status, headers, text = rest
                    body = text.encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", script

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()
