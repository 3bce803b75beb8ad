"""What the tests share besides fixtures: paths, the CLI in a subprocess, servers started on
127.0.0.1 (``pluralign serve`` and a scripted OpenAI-compatible server that misbehaves on
purpose), and the assertion that an error is one line."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from cli_forks import IMPORT_TIME_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PLURALIGN_SHARED", ROOT.parent / "shared"))
HELPSTEER2 = Path(os.environ.get("PLURALIGN_BENCHMARK", SHARED / "data" / "helpsteer2"))
TARGETS = SHARED / "data" / "targets"

CHOOSE_ARGS = ["choose", "--target", '{"care": 1}', "--question", "q", "--response", "a", "--response", "b"]
"""The smallest valid `pluralign choose` arguments, for tests about one more option."""


PAIR = {
    "question": "How should I answer?",
    "responses": ["Help them.", "Tell them to follow the rules."],
    "predictions": [{"care": 0.9, "authority": 0.2}, {"care": 0.2, "authority": 0.9}],
}
"""A feedback's question, responses and predictions: learnt from without asking a judge."""


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a process of its own: a child forked from a process
    that has imported the CLI (``cli_forks.py``), or ``python -m pluralign`` where
    ``PLURALIGN_TEST_FORK=0`` or the call sets a variable read at import."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    forkable = not any(k in (env or {}) for k in IMPORT_TIME_VARIABLES) and not any(
        k.startswith("PYTHON") for k in (env or {})
    )
    if forkable and os.environ.get("PLURALIGN_TEST_FORK", "1") != "0":
        return _FORKS.run(list(args), cwd or Path.cwd(), full_env, timeout)
    return subprocess.run(
        [sys.executable, "-m", "pluralign", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


class _ForkServer:
    """One fork server (``cli_forks.py``) per test process, started on first use."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.folder: Path | None = None
        self.lock = threading.Lock()
        atexit.register(self.stop)

    def _start(self) -> Path:
        if self.proc is None or self.proc.poll() is not None:
            self.folder = Path(tempfile.mkdtemp(prefix="pluralign-forks-"))
            sock = self.folder / "sock"
            env = {**os.environ, "COLUMNS": "200"}
            self.proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("cli_forks.py")), str(sock)],
                env=env,
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
            assert self.proc.stdout is not None and self.proc.stdout.readline() == b"ready\n"
        assert self.folder is not None
        return self.folder

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    @staticmethod
    def _scratch(folder: Path) -> Path:
        """A new empty file for a child's stream (the child opens it; ours is closed at once)."""
        fd, name = tempfile.mkstemp(dir=folder)
        os.close(fd)
        return Path(name)

    def run(self, args: list[str], cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        with self.lock:
            folder = self._start()
        out, err = self._scratch(folder), self._scratch(folder)
        request = {"args": args, "cwd": str(cwd), "env": env, "stdout": str(out), "stderr": str(err)}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(str(folder / "sock"))
                conn.sendall(json.dumps(request).encode() + b"\n")
                conn.settimeout(timeout)
                with conn.makefile("rb") as reader:
                    pid = int(reader.readline())
                    try:
                        line = reader.readline()
                    except TimeoutError:
                        os.kill(pid, signal.SIGKILL)
                        raise subprocess.TimeoutExpired(["pluralign", *args], timeout) from None
            if not line:
                raise RuntimeError(f"the forked CLI {pid} ended without an exit status")
            return subprocess.CompletedProcess(["pluralign", *args], int(line), out.read_text(), err.read_text())
        finally:
            out.unlink(missing_ok=True)
            err.unlink(missing_ok=True)


_FORKS = _ForkServer()


def one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, no traceback, an ``error:`` line that names the problem."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr
    assert "error:" in res.stderr, res.stderr
    for needle in needles:
        assert needle in res.stderr, res.stderr


def openai_choose(
    url: str, *extra: str, env: dict[str, str] | None = None, cache: bool = False
) -> subprocess.CompletedProcess[str]:
    """``pluralign choose`` with spm-zeroshot against an OpenAI-compatible server at ``url``."""
    args = [*CHOOSE_ARGS, "--backend", "openai", "--base-url", url, "--model", "m", "--method", "spm-zeroshot"]
    args += ["--samples", "1", "--max-retries", "0"] + ([] if cache else ["--no-cache"])
    return run_cli(*args, *extra, env=env, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def start_server(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``pluralign serve`` on a free port of 127.0.0.1, once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pluralign", "serve", "--port", str(port), *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(proc, f"{url}/openapi.json", 180)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---- a scripted OpenAI-compatible server, to force faults ----------------------------------


class Script:
    """Responses to serve in order; the last one repeats."""

    def __init__(self, steps: list[tuple]) -> None:
        self.steps = steps
        self.hits = 0
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        """Each request's path, its query included."""
        self.arrivals: list[float] = []
        self.lock = threading.Condition()
        self.active = 0
        self.peak = 0
        """Requests being answered now, and the most at once."""

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.lock.notify_all()

    def leave(self) -> None:
        with self.lock:
            self.active -= 1

    def next(self) -> tuple:
        with self.lock:
            step = self.steps[min(self.hits, len(self.steps) - 1)]
            self.hits += 1
            self.arrivals.append(time.monotonic())
            self.lock.notify_all()
            return step

    def gather(self, n: int, total: int, timeout: float = 20.0) -> None:
        """Hold a request until ``n`` are being answered at once, or all ``total`` have arrived:
        a client that sends ``n`` together reaches a peak of ``n`` however loaded the machine is,
        and one that does not waits out ``timeout`` and leaves a lower peak."""
        with self.lock:
            self.lock.wait_for(lambda: self.active >= n or self.hits >= total, timeout)


def completion(content: str) -> bytes:
    return json.dumps(
        {
            "choices": [{"message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
        }
    ).encode()


def start_scripted(steps: list[tuple]) -> tuple[str, Script, ThreadingHTTPServer]:
    """A server that answers chat completions with ``steps`` in order (see each kind below)."""
    script = Script(steps)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_POST(self):
            script.enter()
            self._left = False
            try:
                self._answer()
            finally:
                self._leave()

        def _leave(self):
            if not self._left:
                self._left = True
                script.leave()

        def end_headers(self):  # done answering before the client can read a byte of the answer
            self._leave()
            super().end_headers()

        def _answer(self):
            script.paths.append(self.path)
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
            if kind == "gate":  # answer well once n requests are in at once (see Script.gather), then after a while
                n, total, *rest = rest
                script.gather(n, total)
                kind = "slow"
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

    server = _QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v1", script, server


class _QuietServer(ThreadingHTTPServer):
    """A client that left before its answer (a deadline, a cancelled request: what fault tests
    force) is no error of the server's; anything else is printed as before."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
