"""The judgement cache in one SQLite file, the default: the processes of one machine share it
(WAL), claims are not needed. The file marks itself in its header (``application_id``), so
another program's database is never used or removed."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pluralign.prediction.judges.base import JudgeResult
from pluralign.prediction.judges.cache_schema import SQLITE_JUDGEMENTS
from pluralign.storage import sqlite_file
from pluralign.support.errors import CacheError, CacheLockedError, InputError, NotACacheError
from pluralign.support.files import open_regular, regular_or_absent

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


__all__ = ["APPLICATION_ID", "JudgementCache", "proven_own"]
