"""A persistent judgement cache: one SQLite file, safe under concurrent writers (WAL,
:mod:`.cache_sqlite`), or a PostgreSQL database that many workers and replicas share
(:mod:`.cache_postgres`), behind one protocol (:class:`Cache`); :class:`CachedBackend` puts one
in front of a judge.

Key: backend + model + method + rendered messages + schema + the generation settings that
can change an answer (the seed included; re-ask counts, timeouts and retries are left out,
as inspect_ai's cache key does), so a rerun or a run with other targets reuses every
answer, while a new sample seed or prompt is a new call.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field, model_validator

from pluralign.prediction.judges.base import Backend, JudgeRequest, JudgeResult
from pluralign.prediction.judges.cache_schema import SCHEMA_VERSION
from pluralign.prediction.judges.cache_sqlite import APPLICATION_ID, JudgementCache, proven_own
from pluralign.storage import DEFAULT_POOL, DatabasePlace, PoolSize, PostgresURL, check_pool, parse_place
from pluralign.support.errors import ClaimedElsewhere, PluralignError
from pluralign.support.home import home
from pluralign.support.options import Options, cli

CLAIM_SECONDS = 300.0
"""How long a worker's claim on a request lasts unless renewed: a worker killed mid-judgement
delays the others by at most this long. A living worker renews its claims every third of it,
so a judgement that takes longer (a long prompt on a CPU judge) is still asked once."""
POLL_SECONDS = 0.25


class CacheOptions(Options):
    """Whether judgements are kept, and where."""

    cache: bool = Field(
        default=True,
        description="Do not read or write the judgement cache.",
        json_schema_extra=cli("--no-cache", invert=True, group="cache"),
    )
    cache_path: DatabasePlace | None = Field(
        default=None,
        description="Judgement cache: a SQLite file, or a postgresql:// URL that many workers share.",
        json_schema_extra=cli("--cache", group="cache"),
    )

    cache_pool: PoolSize = Field(
        default=DEFAULT_POOL,
        description="Most connections this process holds to a postgresql:// --cache at once.",
        json_schema_extra=cli("--cache-pool", group="cache"),
    )

    @model_validator(mode="after")
    def _pool_only_for_a_server(self) -> CacheOptions:
        """A pool size that a SQLite file would ignore is refused, not dropped."""
        check_pool("cache_pool" in self.model_fields_set, self.cache_path, "--cache-pool", "--cache")
        return self

    def open(self) -> Cache | None:
        """The cache these options name (None when switched off)."""
        return open_cache(self.cache_path, self.cache_pool) if self.cache else None


class Cache(Protocol):
    """What a judgement cache offers, on either engine. ``shared``: other workers use it too,
    so requests are claimed before they are judged."""

    shared: bool
    path: Any

    def get(self, key: str) -> JudgeResult | None: ...

    def put(self, key: str, backend: str, model: str, method: str, result: JudgeResult) -> None: ...

    def claim(self, keys: Sequence[str], owner: str, seconds: float) -> set[str]: ...

    def release(self, keys: Sequence[str], owner: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...

    def clear(self) -> int: ...

    def close(self) -> None: ...


def open_cache(place: str | Path | None, pool_size: int = DEFAULT_POOL) -> Cache:
    """The cache ``place`` names: a SQLite file (default: in pluralign's home) or a
    ``postgresql://`` database (holding at most ``pool_size`` connections)."""
    found = parse_place(place, "--cache") if place is not None else default_cache_path()
    if isinstance(found, PostgresURL):
        from pluralign.prediction.judges.cache_postgres import PostgresJudgementCache

        return PostgresJudgementCache(found, pool_size)
    return JudgementCache(found)


def default_cache_path() -> Path:
    return home() / "judgements.sqlite"


def request_key(backend: str, model: str, request: JudgeRequest) -> str:
    """The cache key of one request. The method that sent it is not part of it: the same
    messages, schema and settings to the same model get the same answer whoever asks."""
    payload = {
        "v": SCHEMA_VERSION,
        "backend": backend,
        "model": model,
        "messages": [m.model_dump() for m in request.messages],
        "schema": request.json_schema,
        "settings": request.settings.answer_key(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


_DEFER = contextvars.ContextVar("pluralign_defer_claimed", default=False)


@contextmanager
def defer_claimed() -> Iterator[None]:
    """Within this block, a request another worker is judging raises :class:`ClaimedElsewhere`
    (after this worker's own requests are judged) instead of waiting for it: an evaluation
    judges other items first and comes back."""
    token = _DEFER.set(True)
    try:
        yield
    finally:
        _DEFER.reset(token)


class CachedBackend:
    """A backend that answers from the cache and sends only the misses, in one batch. On a shared
    cache the misses are claimed first: what another worker is judging is waited for (or, under
    :func:`defer_claimed`, left for later), never asked twice."""

    def __init__(self, inner: Backend, cache: Cache, namespace: str) -> None:
        self.inner = inner
        self.cache = cache
        self.namespace = namespace
        self.name = inner.name
        self.model = inner.model
        self.concurrent_requests = inner.concurrent_requests
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claim_seconds = CLAIM_SECONDS

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        keys = [request_key(self.name, self.model, r) for r in requests]
        results: list[JudgeResult | None] = [self.cache.get(k) for k in keys]
        while misses := [i for i, r in enumerate(results) if r is None]:
            mine = self.cache.claim(sorted({keys[i] for i in misses}), self.owner, self.claim_seconds)
            ours = [i for i in misses if keys[i] in mine]
            if self.cache.shared:  # a worker that finished meanwhile released its claims: read again
                for i in ours:
                    results[i] = self.cache.get(keys[i])
                ours = [i for i in ours if results[i] is None]
            self._judge(requests, keys, results, ours)
            if any(r is None for r in results):
                if _DEFER.get():
                    raise ClaimedElsewhere("another worker is judging some of this item's requests")
                time.sleep(POLL_SECONDS)
                for i, key in enumerate(keys):
                    results[i] = results[i] or self.cache.get(key)
        return [r for r in results if r is not None]

    def _judge(
        self, requests: Sequence[JudgeRequest], keys: list[str], results: list[JudgeResult | None], ours: list[int]
    ) -> None:
        if not ours:
            return
        claimed = sorted({keys[i] for i in ours})
        try:
            with self._renewing(claimed):
                fresh = self.inner.generate([requests[i] for i in ours])
            for i, result in zip(ours, fresh, strict=True):
                self.cache.put(keys[i], self.name, self.model, self.namespace, result)
                results[i] = result
        finally:
            self.cache.release(claimed, self.owner)

    @contextmanager
    def _renewing(self, keys: list[str]) -> Iterator[None]:
        """Keep this worker's claims on ``keys`` alive while the judge works (on a shared cache)."""
        if not self.cache.shared:
            yield
            return
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.claim_seconds / 3):
                try:
                    self.cache.claim(keys, self.owner, self.claim_seconds)
                except PluralignError:
                    pass  # the next turn tries again; a claim that lapses costs a repeated request, not an error

        thread = threading.Thread(target=renew, name="pluralign-claim-renewal", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def __getattr__(self, name: str) -> Any:
        """Anything else a backend offers (``llama``, ``pending_message``) is the inner one's."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    async def ready(self) -> str | None:
        return await self.inner.ready()

    def close(self) -> None:
        self.inner.close()
        self.cache.close()


__all__ = [
    "APPLICATION_ID",
    "Cache",
    "CacheOptions",
    "CachedBackend",
    "JudgementCache",
    "default_cache_path",
    "defer_claimed",
    "open_cache",
    "proven_own",
    "request_key",
]
