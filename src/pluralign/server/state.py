"""The service's shared state (config, the loaded method, admission, the queues, the user store,
the saved profiles) and its FastAPI dependencies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request

from pluralign.api import Chooser
from pluralign.people.saved_profiles import SavedProfiles
from pluralign.people.userstore import UserStore
from pluralign.people.userstore_schema import DEFAULT_NAMESPACE
from pluralign.prediction.generators import Generator
from pluralign.server.admission import Admission
from pluralign.server.config import ServerConfig
from pluralign.server.queue import DecisionQueue
from pluralign.server.statuses import retry_after, status_for
from pluralign.server.telemetry import Telemetry


class UserLocks:
    """One lock per (namespace, user), held while a feedback reads, fits and stores: feedback for
    one user in one process waits its turn instead of fitting on a history that is about to
    change (replicas on one database still check the history when they store)."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, namespace: str, user: str) -> AsyncIterator[None]:
        key = (namespace, user)
        lock, waiting = self._held.get(key, (asyncio.Lock(), 0))
        self._held[key] = (lock, waiting + 1)
        try:
            async with lock:
                yield
        finally:
            lock, waiting = self._held[key]
            if waiting == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, waiting - 1)


@dataclass
class ServiceState:
    config: ServerConfig
    queue: DecisionQueue
    profile_queue: DecisionQueue
    users: UserStore
    saved: SavedProfiles
    admission: Admission
    telemetry: Telemetry
    chooser: Chooser | None = None
    generator: Generator | None = None
    method_config: dict[str, Any] = field(default_factory=dict)
    user_locks: UserLocks = field(default_factory=UserLocks)


def state(request: Request) -> ServiceState:
    return request.app.state.pluralign  # type: ignore[no-any-return]


def namespace(request: Request) -> str:
    """The namespace the request's key owns (set by admission; the default one without keys)."""
    return str(getattr(request.state, "namespace", DEFAULT_NAMESPACE))


def chooser(request: Request) -> Chooser:
    s = state(request)
    if s.chooser is None:
        raise HTTPException(503, "the method is still loading; retry in a moment")
    return s.chooser


__all__ = ["ServiceState", "UserLocks", "chooser", "namespace", "retry_after", "state", "status_for"]
