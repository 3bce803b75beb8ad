"""Decisions run one at a time on one worker thread (an in-process model is not
re-entrant), behind a bounded queue with a deadline per decision.

* A full queue answers at once (:class:`QueueFull`, a 503 with Retry-After estimated from
  recent decision times) instead of piling up work. A request that does work before its
  decision (drawing candidates from a generator) takes its place in the queue first
  (:meth:`DecisionQueue.ticket`), so a full queue refuses it before anything is paid for.
* Each decision carries a :class:`~pluralign.support.deadline.Deadline`: it counts from
  when the request arrived, so time spent waiting counts too. When it passes, or the client
  disconnects, the request is answered (504) or dropped at once, and the judge stops at its
  next check (llama.cpp: the next token).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from pluralign.support.deadline import Deadline, deadline
from pluralign.support.errors import DeadlineExceeded, PluralignError

T = TypeVar("T")
POLL_SECONDS = 0.2


class QueueFull(PluralignError):
    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _collect(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


Observer = Callable[[str, float, Any], None]
"""Told of every finished job: its stage, seconds and result (the service's metrics)."""


class DecisionQueue:
    def __init__(
        self,
        max_waiting: int,
        timeout: float,
        name: str = "pluralign-judge",
        stage: str = "judging",
        observe: Observer | None = None,
    ) -> None:
        self.max_waiting = max_waiting
        self.stage = stage
        self.observe = observe
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._inflight = 0
        self._mean_seconds = 30.0

    @property
    def inflight(self) -> int:
        return self._inflight

    def retry_after(self) -> int:
        return max(1, min(3600, math.ceil(self._mean_seconds * max(1, self._inflight))))

    def _admit(self) -> None:
        with self._lock:
            if self._inflight >= self.max_waiting + 1:
                raise QueueFull(
                    f"{self._inflight} decisions are queued or running (limit {self.max_waiting + 1}); retry later",
                    self.retry_after(),
                )
            self._inflight += 1

    def _release(self) -> None:
        with self._lock:
            self._inflight -= 1

    def _timed(self, seconds: float) -> None:
        with self._lock:
            self._mean_seconds = 0.7 * self._mean_seconds + 0.3 * seconds

    @contextmanager
    def ticket(self) -> Iterator[Ticket]:
        """A place in the queue held for a whole request (:class:`QueueFull` at once if there is
        none): its runs do not queue again, and nothing before them runs when the queue is full."""
        self._admit()
        held = Ticket(self)
        try:
            yield held
        finally:
            held._drop()

    async def run(
        self,
        work: Callable[[], T],
        disconnected: Callable[[], Awaitable[bool]] | None = None,
        ticket: Ticket | None = None,
        stage: str | None = None,
    ) -> T:
        """Run ``work`` on the worker thread under the deadline; ``stage`` names it for the
        metrics (default: the queue's own)."""
        if ticket is None:
            with self.ticket() as own:
                return await self.run(work, disconnected, own, stage)
        if ticket.queue is not self:
            raise ValueError("a ticket of another queue")
        handle = Deadline(self.timeout, "decision")
        loop = asyncio.get_running_loop()

        def job() -> T:
            import time

            started = time.monotonic()
            with deadline(None, handle=handle):
                handle.check()  # expired or abandoned while it waited: do nothing
                result = work()
            seconds = time.monotonic() - started
            self._timed(seconds)
            if self.observe is not None:
                self.observe(stage or self.stage, seconds, result)
            return result

        ticket._hold()  # an abandoned job keeps its place until it has really stopped
        future = loop.run_in_executor(self._executor, contextvars.copy_context().run, job)
        future.add_done_callback(lambda _: ticket._drop())
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=POLL_SECONDS)
                if done:
                    return future.result()
                if disconnected is not None and await disconnected():
                    handle.cancel("the client went away")
                    raise DeadlineExceeded("decision cancelled: the client went away")
                if handle.expired():
                    handle.cancel(f"ran past its deadline of {self.timeout:g} s")
                    raise DeadlineExceeded(f"decision ran past its deadline of {self.timeout:g} s")
        finally:
            # the abandoned work still ends (with the cancellation it was sent); its outcome
            # is collected here so asyncio never logs "Future exception was never retrieved"
            future.add_done_callback(_collect)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class Ticket:
    """A held place in a :class:`DecisionQueue` (see :meth:`DecisionQueue.ticket`): given back
    when the request is done and every job it started has stopped."""

    def __init__(self, queue: DecisionQueue) -> None:
        self.queue = queue
        self._holders = 1
        self._lock = threading.Lock()

    def _hold(self) -> None:
        with self._lock:
            self._holders += 1

    def _drop(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self.queue._release()
