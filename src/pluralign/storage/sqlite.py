"""The embedded engine: one SQLite file (WAL), a connection per transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pluralign.support.errors import InputError
from pluralign.support.files import regular_or_absent

BUSY_SECONDS = 30.0


class SQLiteDatabase:
    """A SQLite file. Writers take the file's write lock when their transaction begins
    (``BEGIN IMMEDIATE``), so a read-modify-write needs no lock of its own."""

    engine: Literal["sqlite"] = "sqlite"
    order_column = "rowid"

    def __init__(self, path: Path, option: str) -> None:
        self.path = path
        self.option = option
        self.label = str(path)
        regular_or_absent(path, option)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{option} {path}: cannot create its folder ({exc.strerror})") from None

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    @contextmanager
    def read_only(self) -> Iterator[sqlite3.Connection]:
        """A connection that cannot change the file: to recognise a file before writing to it."""
        db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.option} {self.path}: {exc}") from None
        finally:
            db.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
        try:
            yield db
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.option} {self.path}: {exc}") from None
        finally:
            db.close()

    def lock(self, db: Any, key: str) -> None:
        """Nothing more: a write transaction already holds the file's one write lock."""

    @staticmethod
    def tables(db: Any) -> set[str]:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        """Nothing stays open between transactions."""
