"""The CLI in a forked child of a process that has already imported it.

Most of a fast-tier test's time was the half second each ``python -m pluralign`` spends
starting Python and importing the command line (274 calls in the fast tier). A fork server
started once per test worker pays that once: for each invocation it forks a child that sets
the requested working folder, environment, argv and standard streams, then runs the same
entry point ``python -m pluralign`` runs (:func:`pluralign.launch.main`), and exits with its
status. The child is a real process with its own files, signals and exit code; what it shares
with its parent is only what was imported before any test ran.

Used by :func:`support.run_cli` unless ``PLURALIGN_TEST_FORK=0`` (the README's test command
sets that, so CI runs every command in a fresh interpreter) or the call sets a variable that
is read while importing (``COLUMNS``, ``PYTHON*``).

Protocol, one Unix-socket connection per call: the client sends one JSON line ``{args, cwd,
env, stdout, stderr}``; the child answers its pid on one line and, when it is done, its exit
status on the next.
"""

from __future__ import annotations

import json
import os
import socket
import sys

IMPORT_TIME_VARIABLES = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM")
"""Read by the CLI's consoles when they are made at import: a call that sets one is not forked."""


def _exit_status(code: object) -> int:
    """What the interpreter does with ``SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _child(request: dict, conn: socket.socket) -> None:
    """Become ``python -m pluralign ARGS`` in the requested folder and environment; never returns."""
    import atexit
    import importlib.util
    import random
    import signal
    import threading
    import traceback
    import types

    conn.sendall(f"{os.getpid()}\n".encode())
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    random.seed()  # a fresh process draws fresh random numbers
    status = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(out, fd)
            os.close(out)
        spec = importlib.util.find_spec("pluralign.__main__")
        assert spec is not None and spec.origin is not None
        main_module = types.ModuleType("__main__")
        main_module.__package__, main_module.__spec__, main_module.__file__ = "pluralign", spec, spec.origin
        sys.modules["__main__"] = main_module  # click names the program "python -m pluralign" from this
        sys.argv = [spec.origin, *request["args"]]
        sys.path[0] = request["cwd"]
        from pluralign.launch import main

        try:
            main()
            status = 0
        except SystemExit as exc:
            status = _exit_status(exc.code)
        except BaseException:
            traceback.print_exc()
            status = 1
        for thread in threading.enumerate():  # the interpreter waits for these before exiting
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(f"{status}\n".encode())
        finally:
            os._exit(status)


def serve(path: str) -> None:
    """Accept calls on the Unix socket ``path`` until the process that started us is gone."""
    import importlib
    import signal

    for module in ("pluralign.cli", "pluralign.launch"):  # the imports every call would otherwise pay
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    parent = os.getppid()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    server.settimeout(1.0)
    print("ready", flush=True)
    while os.getppid() == parent:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        with conn, conn.makefile("rb") as reader:
            request = json.loads(reader.readline())
            pid = os.fork()
            if pid == 0:
                server.close()
                _child(request, conn)


if __name__ == "__main__":
    serve(sys.argv[1])
