"""People's choices and fitted profiles, and the steered completions they can answer to: one
embedded SQLite database (WAL, a schema version, every change in a transaction).

User names are labels in rows, never parts of a path. Many service threads may write at
once: each call opens its own connection and SQLite serialises the writers (``BEGIN
IMMEDIATE`` with a busy timeout), so concurrent feedback loses nothing. A profile is stored
only if it rests on at least as many choices as the one it replaces, so fits that finish out
of order never leave an older profile in place.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pluralign.errors import InputError
from pluralign.home import home
from pluralign.profile import ChoiceRecord

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS choices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    record TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS choices_by_user ON choices (user, id);
CREATE TABLE IF NOT EXISTS profiles (
    user TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    n_choices INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS completions (
    id TEXT PRIMARY KEY,
    user TEXT,
    record TEXT NOT NULL,
    created REAL NOT NULL
);
"""
BUSY_SECONDS = 30.0


def default_path() -> Path:
    return home() / "users.sqlite"


class UserStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"--db {self.path}: not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with sqlite3.connect(self.path, timeout=BUSY_SECONDS) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(SCHEMA)  # IF NOT EXISTS throughout: safe for many processes
            db.close()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {self.path}: {exc}") from None
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise InputError(
                    f"--db {self.path}: schema version {row[0]}, this pluralign reads {SCHEMA_VERSION}; "
                    "use another file"
                )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {self.path}: {exc}") from None
        finally:
            db.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS)
        try:
            yield db
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {self.path}: {exc}") from None
        finally:
            db.close()

    # -- histories -----------------------------------------------------------------------------
    def add_choice(self, user: str, record: ChoiceRecord) -> int:
        """Append one choice to ``user``'s history; returns how many choices it now holds."""
        with self._write() as db:
            db.execute(
                "INSERT INTO choices (user, record, created) VALUES (?, ?, ?)",
                (user, record.model_dump_json(), time.time()),
            )
            return int(db.execute("SELECT COUNT(*) FROM choices WHERE user = ?", (user,)).fetchone()[0])

    def history(self, user: str) -> list[ChoiceRecord]:
        with self._read() as db:
            rows = db.execute("SELECT record FROM choices WHERE user = ? ORDER BY id", (user,)).fetchall()
        return [ChoiceRecord.model_validate_json(r[0]) for r in rows]

    # -- profiles ------------------------------------------------------------------------------
    def set_profile(self, user: str, profile: dict[str, Any], n_choices: int) -> bool:
        """Store a fitted profile unless a profile from more choices is there already."""
        with self._write() as db:
            row = db.execute("SELECT n_choices FROM profiles WHERE user = ?", (user,)).fetchone()
            if row is not None and int(row[0]) > n_choices:
                return False
            db.execute(
                "INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?)",
                (user, json.dumps(profile), n_choices, time.time()),
            )
            return True

    def profile(self, user: str) -> tuple[dict[str, Any], int] | None:
        with self._read() as db:
            row = db.execute("SELECT profile, n_choices FROM profiles WHERE user = ?", (user,)).fetchone()
        return None if row is None else (json.loads(row[0]), int(row[1]))

    def forget(self, user: str) -> int:
        """Delete a user's history, profile and completions; returns the rows removed."""
        with self._write() as db:
            removed = 0
            for table in ("choices", "profiles", "completions"):
                removed += db.execute(f"DELETE FROM {table} WHERE user = ?", (user,)).rowcount
            return removed

    # -- completions ---------------------------------------------------------------------------
    def add_completion(self, completion_id: str, user: str | None, record: ChoiceRecord) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO completions VALUES (?, ?, ?, ?)",
                (completion_id, user, record.model_dump_json(), time.time()),
            )

    def completion(self, completion_id: str) -> tuple[str | None, ChoiceRecord] | None:
        with self._read() as db:
            row = db.execute("SELECT user, record FROM completions WHERE id = ?", (completion_id,)).fetchone()
        return None if row is None else (row[0], ChoiceRecord.model_validate_json(row[1]))

    def users(self) -> Sequence[str]:
        with self._read() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT user FROM choices ORDER BY user").fetchall()]
