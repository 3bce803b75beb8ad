"""A persistent judgement cache: one SQLite file, safe under concurrent writers (WAL), or a
PostgreSQL database that many workers and replicas share (:mod:`.cache_postgres`).

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
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from pluralign.prediction.judges.base import Backend, JudgeRequest, JudgeResult
from pluralign.prediction.judges.cache_schema import SQLITE_JUDGEMENTS
from pluralign.storage import DatabasePlace, PostgresURL, parse_place, sqlite_file
from pluralign.support.errors import (
    CacheError,
    CacheLockedError,
    ClaimedElsewhere,
    InputError,
    NotACacheError,
    PluralignError,
)
from pluralign.support.files import open_regular, regular_or_absent
from pluralign.support.home import home
from pluralign.support.options import Options, cli

SCHEMA_VERSION = 2
CLAIM_SECONDS = 300.0
"""How long a worker's claim on a request lasts unless renewed: a worker killed mid-judgement
delays the others by at most this long. A living worker renews its claims every third of it,
so a judgement that takes longer (a long prompt on a CPU judge) is still asked once."""
POLL_SECONDS = 0.25
APPLICATION_ID = 0x706C7561  # "plua" in the SQLite header: this file is a pluralign cache
OWN_TABLES = {"judgements", "batch_requests", "batch_answers"}
_SQLITE_MAGIC = b"SQLite format 3\x00"


def _header(path: Path) -> bytes | None:
    """The first 100 bytes of an existing file (SQLite's header), or None if there is none. Only
    a regular file reached without a link is a cache (SQLite would follow a link, and block on a
    named pipe)."""
    try:
        regular_or_absent(path, "cache")
    except InputError as exc:
        raise NotACacheError(str(exc)) from None
    try:
        with os.fdopen(open_regular(path, os.O_RDONLY), "rb") as handle:
            return handle.read(100)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CacheError(f"cannot open cache {path}: {exc.strerror}") from None


def proven_own(path: Path) -> bool:
    """True only when the file's SQLite header carries pluralign's application id: the one
    proof that lets ``cache clear`` remove a cache that is too damaged to open."""
    head = _header(path)
    return head is not None and head.startswith(_SQLITE_MAGIC) and head[68:72] == APPLICATION_ID.to_bytes(4, "big")


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

    def open(self) -> Cache | None:
        """The cache these options name (None when switched off)."""
        return open_cache(self.cache_path) if self.cache else None


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


def open_cache(place: str | Path | None) -> Cache:
    """The cache ``place`` names: a SQLite file (default: in pluralign's home) or a
    ``postgresql://`` database."""
    found = parse_place(place, "--cache") if place is not None else default_cache_path()
    if isinstance(found, PostgresURL):
        from pluralign.prediction.judges.cache_postgres import PostgresJudgementCache

        return PostgresJudgementCache(found)
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


class JudgementCache:
    """The cache in one SQLite file (the default): used by the processes of one machine."""

    shared = False

    def __init__(self, path: str | Path, timeout: float = 30.0) -> None:
        """Open (or create) a cache. An existing file is used only if it is a pluralign cache:
        another program's database or any other file is refused and left exactly as it was."""
        self.path = sqlite_file(Path(path), "--cache")
        head = _header(self.path)
        if head and not head.startswith(_SQLITE_MAGIC):
            raise NotACacheError(f"{self.path} is not a pluralign judgement cache; name another --cache file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the cache's folder {self.path.parent}: {exc.strerror}") from None
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            if head:
                self._recognise()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            self._db.execute(SQLITE_JUDGEMENTS)
            row = self._db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {row}")
        except sqlite3.Error as exc:
            if hasattr(self, "_db"):
                self._db.close()
            raise self._error(exc) from None
        except CacheError:
            self._db.close()
            raise

    def _recognise(self) -> None:
        """An existing database is ours if it says so (application id) or, for caches made
        before the id existed, if it holds our judgements table and nothing else of note."""
        app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        if app_id == APPLICATION_ID:
            return
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and (not tables or ("judgements" in tables and tables <= OWN_TABLES)):
            return
        raise NotACacheError(
            f"{self.path} is a database of another program, not a pluralign cache; name another --cache"
        )

    def _error(self, exc: sqlite3.Error) -> CacheError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return CacheLockedError(
                f"cache {self.path} is locked by another process ({text}); retry, or use --no-cache"
            )
        ours = proven_own(self.path)
        if "not a database" in text and not ours:
            return NotACacheError(f"{self.path} is not a pluralign judgement cache; name another --cache file")
        if ours:
            return CacheError(
                f"cache {self.path} is damaged ({text}); `pluralign cache clear --cache {self.path}` removes it, "
                "or use another --cache"
            )
        return CacheError(
            f"cache {self.path} is damaged ({text}) and carries no pluralign mark, so pluralign will not remove "
            "it: delete it yourself if it is a cache of yours, or use another --cache"
        )

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one statement on the cache's database (for the batch backend's own tables)."""
        with self._lock:
            try:
                return self._db.execute(query, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group many writes into one commit (one fsync instead of one per row)."""
        self.sql("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.sql("ROLLBACK")
            raise
        self.sql("COMMIT")

    def get(self, key: str) -> JudgeResult | None:
        with self._lock:
            try:
                row = self._db.execute("SELECT result FROM judgements WHERE key = ?", (key,)).fetchone()
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        if row is None:
            return None
        try:
            result = JudgeResult.model_validate_json(row[0])
        except ValueError:
            raise CacheError(
                f"cache {self.path} holds an unreadable entry; `pluralign cache clear --cache {self.path}` empties it"
            ) from None
        return result.model_copy(update={"cached": True})

    def put(self, key: str, backend: str, model: str, method: str, result: JudgeResult) -> None:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?, ?)",
                    (key, backend, model, method, result.model_dump_json(), time.time()),
                )
            except sqlite3.Error as exc:
                raise self._error(exc) from None

    def claim(self, keys: Sequence[str], owner: str, seconds: float) -> set[str]:
        """Every key: a file on one machine is not shared by workers that coordinate."""
        return set(keys)

    def release(self, keys: Sequence[str], owner: str) -> None:
        """Nothing was claimed."""

    def stats(self) -> dict[str, Any]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT backend, model, method, COUNT(*) FROM judgements GROUP BY backend, model, method"
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        return {
            "path": str(self.path),
            "entries": sum(r[3] for r in rows),
            "bytes": self.path.stat().st_size if self.path.exists() else 0,
            "by_model": [{"backend": r[0], "model": r[1], "method": r[2], "entries": r[3]} for r in rows],
        }

    def clear(self) -> int:
        with self._lock:
            try:
                n = self._db.execute("SELECT COUNT(*) FROM judgements").fetchone()[0]
                self._db.execute("DELETE FROM judgements")
                self._db.execute("VACUUM")
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        return int(n)

    def close(self) -> None:
        self._db.close()


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
