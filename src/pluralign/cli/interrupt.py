"""Ctrl-C ends a command within seconds, wherever it lands.

Python delivers SIGINT as KeyboardInterrupt between bytecodes of the main thread, and an
exception raised inside a ctypes callback (llama.cpp calls back into Python to log and to
sample) is printed with a traceback and swallowed, so a plain KeyboardInterrupt can be lost
while the run goes on (the flaky Ctrl-C test of issue 17), and llama-cpp-python sends
stderr to /dev/null while a model loads. So the first Ctrl-C:

* cancels the command's :class:`~pluralign.support.deadline.Deadline`: every judge stops at
  its next check (llama.cpp: before each decode), in any thread;
* raises KeyboardInterrupt as usual, unless the signal landed inside one of
  llama-cpp-python's ctypes callbacks, where the cancelled deadline does the work instead;
* starts a watchdog that ends the process with exit code 130 if it has not finished
  within ``GRACE_SECONDS`` (finished work is on disk already: appends are fsynced, the
  rest is written atomically), writing its last line to the terminal's real stderr.

A second Ctrl-C exits at once. A parent that ignores SIGINT (a background job) is obeyed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from pluralign.support.deadline import Deadline, deadline
from pluralign.support.errors import DeadlineExceeded

GRACE_SECONDS = 10.0
EXIT_INTERRUPTED = 130
_interrupted = threading.Event()
_said = threading.Event()
_farewell: list[Callable[[], str]] = []
_stderr_fd: list[int] = []


def interrupted() -> bool:
    return _interrupted.is_set()


def farewell(text: str) -> None:
    """Write the last line of an interrupted command to the real stderr (llama-cpp-python
    may have pointed file descriptor 2 at /dev/null while a model loads)."""
    _said.set()
    os.write(_stderr_fd[0] if _stderr_fd else 2, (text + "\n").encode())


def said_farewell() -> bool:
    return _said.is_set()


def on_hard_exit(message: Callable[[], str]) -> None:
    """What to print if the watchdog has to end the process (e.g. how many items were kept)."""
    _farewell[:] = [message]


def is_interrupt(exc: BaseException) -> bool:
    """A KeyboardInterrupt, or a judge stopped by the deadline that Ctrl-C cancelled."""
    return isinstance(exc, KeyboardInterrupt) or (isinstance(exc, DeadlineExceeded) and interrupted())


def _hard_exit() -> None:
    text = "interrupted"
    if _farewell:
        try:
            text = _farewell[0]()
        except Exception:  # the last words must not fail
            pass
    try:
        farewell(text)
    finally:
        os._exit(EXIT_INTERRUPTED)


# llama-cpp-python's Python functions that llama.cpp calls back through ctypes
_CALLBACKS = {"llama_log_callback", "apply_wrapper", "apply_func", "free_wrapper"}


def _inside_a_callback(frame: FrameType | None) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_name in _CALLBACKS and f"{os.sep}llama_cpp{os.sep}" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def _handler(handle: Deadline) -> Callable[[int, FrameType | None], None]:
    def handle_sigint(signum: int, frame: FrameType | None) -> None:
        if _interrupted.is_set():
            _hard_exit()
        _interrupted.set()
        handle.cancel("interrupted")
        watchdog = threading.Timer(GRACE_SECONDS, _hard_exit)
        watchdog.daemon = True
        watchdog.start()
        if not _inside_a_callback(frame):
            raise KeyboardInterrupt

    return handle_sigint


@contextmanager
def interruptible() -> Iterator[Deadline]:
    """Run a command under a cancellable deadline with the Ctrl-C handling above."""
    handle = Deadline(None, "run")
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    takes_over = main and previous is not signal.SIG_IGN
    if takes_over:
        if not _stderr_fd:
            _stderr_fd.append(os.dup(2))
        signal.signal(signal.SIGINT, _handler(handle))
    try:
        with deadline(None, handle=handle):
            yield handle
    finally:
        if takes_over:
            signal.signal(signal.SIGINT, previous)
