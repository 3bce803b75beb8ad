"""Deadlines and cancellation for judge work, without threading a parameter through
every method: the caller opens ``with deadline(seconds) as d:`` and every backend call made
inside (in this thread, or in tasks and threads started with its context) checks it.

llama.cpp checks between tokens, the openai backend bounds each HTTP call by what is left,
and ``d.cancel()`` (a client that went away) stops the work at the next check.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pluralign.support.errors import DeadlineExceeded


class Deadline:
    def __init__(self, seconds: float | None, what: str = "decision") -> None:
        self.seconds = seconds
        self.what = what
        self.expires = time.monotonic() + seconds if seconds is not None else None
        self._cancelled = threading.Event()
        self.reason = ""
        self._wakers: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    def cancel(self, reason: str = "the client went away") -> None:
        self.reason = reason
        with self._lock:
            self._cancelled.set()
            wakers, self._wakers = self._wakers, []
        for wake in wakers:
            wake()

    def on_cancel(self, wake: Callable[[], object]) -> Callable[[], None]:
        """Call ``wake`` (from the cancelling thread) when this is cancelled, at once if it already
        is, so a waiter need not poll; returns what takes the call back."""
        with self._lock:
            if not self._cancelled.is_set():
                self._wakers.append(wake)
                return lambda: self._forget(wake)
        wake()
        return lambda: None

    def _forget(self, wake: Callable[[], object]) -> None:
        with self._lock:
            if wake in self._wakers:
                self._wakers.remove(wake)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def remaining(self) -> float | None:
        if self.expires is None:
            return None
        return self.expires - time.monotonic()

    def expired(self) -> bool:
        left = self.remaining()
        return self.cancelled or (left is not None and left <= 0)

    def check(self) -> None:
        if self.cancelled:
            raise DeadlineExceeded(f"{self.what} cancelled: {self.reason}")
        left = self.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded(f"{self.what} ran past its deadline of {self.seconds:g} s")


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("pluralign_deadline", default=None)


def current() -> Deadline | None:
    return _current.get()


def check() -> None:
    """Raise DeadlineExceeded if the current deadline (if any) has passed or was cancelled."""
    d = _current.get()
    if d is not None:
        d.check()


def bound(timeout: float) -> float:
    """A per-call timeout, shortened to what the current deadline leaves."""
    d = _current.get()
    left = d.remaining() if d is not None else None
    if left is None:
        return timeout
    return max(0.05, min(timeout, left))


@contextmanager
def deadline(seconds: float | None, what: str = "decision", handle: Deadline | None = None) -> Iterator[Deadline]:
    d = handle or Deadline(seconds, what)
    token = _current.set(d)
    try:
        yield d
    finally:
        _current.reset(token)
