"""People's choices and fitted profiles, and the steered completions they can answer to: one
embedded SQLite database (WAL, versioned migrations, every change in a transaction).

User names are labels in rows, never parts of a path. Every row belongs to a **namespace**
(the service key that made it: one application's users are invisible to another's).

Consistency rules, each enforced inside one write transaction:

* A user's stored profile is always the fit of their stored history: a choice and the profile
  fitted with it are committed together (:meth:`UserStore.commit_choice`), and only if the
  history the fit read is still the stored one (the user's ``revision``). A feedback that lost
  a race fits again; one that fails stores nothing.
* A forgotten user stays forgotten: each user row has an ``incarnation`` (an id never reused),
  so work that read a user before :meth:`forget` can tell that the user it read is gone and
  writes nothing (:class:`UserForgotten`).
* Feedback on one completion is idempotent: one choice per (user, completion), replaced in
  place if the person changes their mind.
* Completions are kept for a bounded time (``completion_ttl``) and then trimmed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralign.people.profile import ChoiceRecord
from pluralign.support.errors import InputError, PluralignError
from pluralign.support.files import regular_or_absent
from pluralign.support.home import home

SCHEMA_VERSION = 2
APPLICATION_ID = 0x706C7575  # "pluu" in the SQLite header: this file is a pluralign user store
BUSY_SECONDS = 30.0
DEFAULT_NAMESPACE = "default"
DEFAULT_COMPLETION_TTL = 7 * 86_400.0
V1_TABLES = {"meta", "choices", "profiles", "completions", "sqlite_sequence"}

SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    incarnation INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, name)
);
CREATE TABLE IF NOT EXISTS user_choices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    incarnation INTEGER NOT NULL REFERENCES users (incarnation) ON DELETE CASCADE,
    completion_id TEXT,
    record TEXT NOT NULL,
    created REAL NOT NULL,
    UNIQUE (incarnation, completion_id)
);
CREATE INDEX IF NOT EXISTS user_choices_in_order ON user_choices (incarnation, id);
CREATE TABLE IF NOT EXISTS user_profiles (
    incarnation INTEGER PRIMARY KEY REFERENCES users (incarnation) ON DELETE CASCADE,
    profile TEXT NOT NULL,
    n_choices INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS user_completions (
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    user TEXT,
    record TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS user_completions_by_user ON user_completions (namespace, user);
CREATE INDEX IF NOT EXISTS user_completions_by_age ON user_completions (created);
"""


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Statements one by one (``executescript`` would commit the transaction they belong to)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """v1 kept rows by user name with no namespace: they join the default namespace."""
    _script(db, SCHEMA_V2)
    db.execute(
        "INSERT INTO users (namespace, name) SELECT ?, user FROM "
        "(SELECT user FROM choices UNION SELECT user FROM profiles) ORDER BY user",
        (DEFAULT_NAMESPACE,),
    )
    db.execute(
        "INSERT INTO user_choices (incarnation, record, created) SELECT u.incarnation, c.record, c.created "
        "FROM choices c JOIN users u ON u.name = c.user AND u.namespace = ? ORDER BY c.id",
        (DEFAULT_NAMESPACE,),
    )
    db.execute(
        "UPDATE users SET revision = (SELECT COUNT(*) FROM user_choices c WHERE c.incarnation = users.incarnation)"
    )
    db.execute(
        "INSERT INTO user_profiles SELECT u.incarnation, p.profile, p.n_choices, u.revision, p.updated "
        "FROM profiles p JOIN users u ON u.name = p.user AND u.namespace = ?",
        (DEFAULT_NAMESPACE,),
    )
    db.execute(
        "INSERT OR IGNORE INTO user_completions SELECT id, ?, user, record, created FROM completions",
        (DEFAULT_NAMESPACE,),
    )
    for table in ("choices", "profiles", "completions"):
        db.execute(f"DROP TABLE {table}")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _migrate_1_to_2}
"""Schema version -> the step that brings the version before it there (run in one transaction)."""


class UserForgotten(PluralignError):
    """The user was forgotten while the request worked on them: nothing was written."""


class HistoryChanged(PluralignError):
    """Another request changed the user's history after this one read it (fit again)."""


@dataclass(frozen=True)
class StoredChoice:
    completion_id: str | None
    record: ChoiceRecord


@dataclass(frozen=True)
class UserSnapshot:
    """What a request read of one user: which incarnation (None: no such user yet), at which
    revision, and their history in order."""

    namespace: str
    user: str
    incarnation: int | None = None
    revision: int = 0
    history: list[StoredChoice] = field(default_factory=list)

    def find(self, completion_id: str | None) -> StoredChoice | None:
        if completion_id is None:
            return None
        return next((c for c in self.history if c.completion_id == completion_id), None)

    def with_choice(self, completion_id: str | None, record: ChoiceRecord) -> list[ChoiceRecord]:
        """The history as it would be with this choice: replacing the earlier answer to the same
        completion in place, else appended."""
        out = [c.record for c in self.history]
        for i, c in enumerate(self.history):
            if completion_id is not None and c.completion_id == completion_id:
                out[i] = record
                return out
        return [*out, record]


@dataclass(frozen=True)
class StoredProfile:
    profile: dict[str, Any]
    n_choices: int
    incarnation: int


def default_path() -> Path:
    return home() / "users.sqlite"


class UserStore:
    def __init__(self, path: Path | None = None, completion_ttl: float = DEFAULT_COMPLETION_TTL) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.completion_ttl = completion_ttl
        regular_or_absent(self.path, "--db")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--db {self.path}: cannot create its folder ({exc.strerror})") from None
        if self.path.exists() and self.path.stat().st_size > 0:  # recognised read-only: a foreign file stays as it was
            try:
                probe = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS)
                try:
                    self._recognise(probe)
                finally:
                    probe.close()
            except sqlite3.DatabaseError as exc:
                raise InputError(f"--db {self.path} is not a pluralign user store ({exc})") from None
        with self._write() as db:
            self._recognise(db)
            version = self._version(db)
            if version > SCHEMA_VERSION:
                raise InputError(
                    f"--db {self.path}: schema version {version}, this pluralign reads up to {SCHEMA_VERSION}; "
                    "use a newer pluralign or another file"
                )
            if version == 0:  # a new store: the current schema at once
                _script(db, SCHEMA_V2)
            else:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](db)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")

    def _recognise(self, db: sqlite3.Connection) -> None:
        """Only a user store of ours (or an empty file) is opened: another program's database is
        refused and left exactly as it was."""
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == APPLICATION_ID or not tables:
            return
        if app_id == 0 and "meta" in tables and tables <= V1_TABLES:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and row[0] == "1":
                return  # a user store of v0.2, before the mark existed
        raise InputError(f"--db {self.path} is a database of another program, not a pluralign user store")

    @staticmethod
    def _version(db: sqlite3.Connection) -> int:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            return 0
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row is not None and str(row[0]).isdigit() else 0

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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

    @staticmethod
    def _user(db: sqlite3.Connection, namespace: str, user: str) -> tuple[int, int] | None:
        row = db.execute(
            "SELECT incarnation, revision FROM users WHERE namespace = ? AND name = ?", (namespace, user)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    # -- histories and profiles ----------------------------------------------------------------
    def snapshot(self, namespace: str, user: str) -> UserSnapshot:
        """The user as stored now (one read transaction)."""
        with self._read() as db:
            found = self._user(db, namespace, user)
            if found is None:
                return UserSnapshot(namespace, user)
            rows = db.execute(
                "SELECT completion_id, record FROM user_choices WHERE incarnation = ? ORDER BY id", (found[0],)
            ).fetchall()
        history = [StoredChoice(r[0], ChoiceRecord.model_validate_json(r[1])) for r in rows]
        return UserSnapshot(namespace, user, found[0], found[1], history)

    def history(self, namespace: str, user: str) -> list[ChoiceRecord]:
        return [c.record for c in self.snapshot(namespace, user).history]

    def commit_choice(
        self,
        read: UserSnapshot,
        completion_id: str | None,
        record: ChoiceRecord,
        profile: dict[str, Any],
        fitted_on: int,
    ) -> int:
        """Store one choice and the profile fitted on the history it makes, as one unit, if the
        user is still as ``read`` saw them; returns how many choices the user now holds.

        Raises :class:`UserForgotten` if the user ``read`` saw is gone, :class:`HistoryChanged`
        if their history moved on (fit again on a new snapshot)."""
        with self._write() as db:
            now = self._user(db, read.namespace, read.user)
            if read.incarnation is not None and (now is None or now[0] != read.incarnation):
                raise UserForgotten(f"user {read.user!r} was forgotten while this request ran; nothing was stored")
            if (now[1] if now is not None else 0) != read.revision:
                raise HistoryChanged(f"user {read.user!r} gave other feedback meanwhile")
            if now is None:
                cursor = db.execute(
                    "INSERT INTO users (namespace, name, revision) VALUES (?, ?, 0)", (read.namespace, read.user)
                )
                incarnation = int(cursor.lastrowid or 0)
            else:
                incarnation = now[0]
            body, stamp = record.model_dump_json(), time.time()
            replaced = 0
            if completion_id is not None:
                replaced = db.execute(
                    "UPDATE user_choices SET record = ?, created = ? WHERE incarnation = ? AND completion_id = ?",
                    (body, stamp, incarnation, completion_id),
                ).rowcount
            if not replaced:
                db.execute(
                    "INSERT INTO user_choices (incarnation, completion_id, record, created) VALUES (?, ?, ?, ?)",
                    (incarnation, completion_id, body, stamp),
                )
            revision = read.revision + 1
            db.execute("UPDATE users SET revision = ? WHERE incarnation = ?", (revision, incarnation))
            db.execute(
                "INSERT OR REPLACE INTO user_profiles VALUES (?, ?, ?, ?, ?)",
                (incarnation, json.dumps(profile), fitted_on, revision, stamp),
            )
            count = db.execute("SELECT COUNT(*) FROM user_choices WHERE incarnation = ?", (incarnation,)).fetchone()
            return int(count[0])

    def profile(self, namespace: str, user: str) -> StoredProfile | None:
        with self._read() as db:
            row = db.execute(
                "SELECT p.profile, p.n_choices, u.incarnation FROM users u JOIN user_profiles p "
                "ON p.incarnation = u.incarnation WHERE u.namespace = ? AND u.name = ?",
                (namespace, user),
            ).fetchone()
        return None if row is None else StoredProfile(json.loads(row[0]), int(row[1]), int(row[2]))

    def forget(self, namespace: str, user: str) -> int:
        """Delete a user's history, profile and completions; returns the rows removed. Work that
        read this user before cannot write them back (their incarnation is gone for good)."""
        with self._write() as db:
            removed = 0
            found = self._user(db, namespace, user)
            if found is not None:
                for table in ("user_choices", "user_profiles"):
                    removed += db.execute(f"DELETE FROM {table} WHERE incarnation = ?", (found[0],)).rowcount
                db.execute("DELETE FROM users WHERE incarnation = ?", (found[0],))
            removed += db.execute(
                "DELETE FROM user_completions WHERE namespace = ? AND user = ?", (namespace, user)
            ).rowcount
            return removed

    def users(self, namespace: str) -> Sequence[str]:
        with self._read() as db:
            rows = db.execute("SELECT name FROM users WHERE namespace = ? ORDER BY name", (namespace,)).fetchall()
        return [r[0] for r in rows]

    # -- completions ---------------------------------------------------------------------------
    def add_completion(
        self,
        namespace: str,
        completion_id: str,
        user: str | None,
        record: ChoiceRecord,
        incarnation: int | None = None,
    ) -> bool:
        """Keep a steered completion so feedback can name it; completions past their time are
        trimmed. With ``incarnation`` (the user whose stored profile steered it), nothing is kept
        if that user was forgotten meanwhile (returns False)."""
        with self._write() as db:
            if incarnation is not None and user is not None:
                now = self._user(db, namespace, user)
                if now is None or now[0] != incarnation:
                    return False
            db.execute("DELETE FROM user_completions WHERE created < ?", (time.time() - self.completion_ttl,))
            db.execute(
                "INSERT INTO user_completions VALUES (?, ?, ?, ?, ?)",
                (completion_id, namespace, user, record.model_dump_json(), time.time()),
            )
            return True

    def completion(self, namespace: str, completion_id: str) -> tuple[str | None, ChoiceRecord] | None:
        with self._read() as db:
            row = db.execute(
                "SELECT user, record FROM user_completions WHERE namespace = ? AND id = ? AND created >= ?",
                (namespace, completion_id, time.time() - self.completion_ttl),
            ).fetchone()
        return None if row is None else (row[0], ChoiceRecord.model_validate_json(row[1]))
