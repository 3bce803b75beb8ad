"""Places for requests in flight to a server, shared by every thread and event loop that sends
there (``--concurrency`` a server), handed out in the order they were asked for.

Each evaluation worker thread sends on its own event loop, so a batch (an item's requests) lines
up in one step: its requests then take places one after another, and a server's prefix cache
serves the passes that share a prefix, whatever another thread lines up meanwhile."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager


class Turn:
    """One request's turn for a place: its loop's future, whether a place was handed to it, and
    whether its request came to take it (a request stopped before it began never does)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.granted = False
        self.entered = False


def wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Places:
    """``n`` places for requests in flight, shared by every thread and event loop, handed out in
    the order they were asked for: the requests of one item that share a prefix (the samples of
    one attribute) reach the server one after another, so its prefix cache serves them. A waiter
    is woken in its own loop; one cancelled while it waits gives back a place it was handed."""

    def __init__(self, n: int) -> None:
        self._free = n
        self._waiting: collections.deque[Turn] = collections.deque()
        self._lock = threading.Lock()

    def _give_back(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.future.done():
                waiter.granted = True
                waiter.loop.call_soon_threadsafe(wake, waiter.future)
                return
        self._free += 1

    def line_up(self, n: int) -> list[Turn]:
        """``n`` turns asked for in one step, in order: a batch's requests (an item's) take places
        one after another, never interleaved with those of a batch another thread lines up
        meanwhile. Each turn is then taken with :meth:`hold`; :meth:`drop` gives back the turns of
        requests that were stopped before they began."""
        turns = []
        with self._lock:
            for _ in range(n):
                turn = Turn()
                if self._free > 0 and not self._waiting:
                    self._free -= 1
                    turn.granted = True
                    turn.future.set_result(None)
                else:
                    self._waiting.append(turn)
                turns.append(turn)
        return turns

    def drop(self, turns: Sequence[Turn]) -> None:
        """Give back the places of turns no request came to take, and leave the line for the rest."""
        with self._lock:
            for turn in turns:
                if turn.entered:
                    continue
                turn.entered = True
                if turn.granted:
                    self._give_back()
                elif turn in self._waiting:
                    self._waiting.remove(turn)

    @asynccontextmanager
    async def hold(self, turn: Turn | None = None) -> AsyncIterator[None]:
        """A place for the body of the ``with``: the ``turn`` lined up for it, or a new one."""
        waiter = turn if turn is not None else self.line_up(1)[0]
        waiter.entered = True
        try:
            await waiter.future
        except BaseException:
            with self._lock:
                if waiter.granted:
                    self._give_back()
                elif waiter in self._waiting:
                    self._waiting.remove(waiter)
            raise
        try:
            yield
        finally:
            with self._lock:
                self._give_back()


__all__ = ["Places", "Turn", "wake"]
