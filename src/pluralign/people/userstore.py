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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralign.people.profile import ChoiceRecord
from pluralign.people.userstore_schema import (
    MIGRATIONS,
    SCHEMA_V2,
    SCHEMA_VERSION,
    V1_TABLES,
    script,
)
from pluralign.support.errors import InputError, PluralignError
from pluralign.support.files import regular_or_absent, sqlite_file
from pluralign.support.home import home

APPLICATION_ID = 0x706C7575  # "pluu" in the SQLite header: this file is a pluralign user store
BUSY_SECONDS = 30.0
DEFAULT_COMPLETION_TTL = 7 * 86_400.0


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
        self.path = sqlite_file(Path(path), "--db") if path is not None else default_path()
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
            if version == 0:  # a new store: v2's tables, then every step since
                script(db, SCHEMA_V2)
                version = 2
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

    def ping(self) -> None:
        """A read of the store (an error naming the database if it cannot be read)."""
        with self._read() as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()

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
        record: ChoiceRecord | None,
        incarnation: int | None = None,
        response: str | None = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Keep a steered completion so feedback can name it (``record`` None: it had one answer,
        nothing to learn from, kept only to be fetched); completions past their time are trimmed.
        With ``incarnation`` (the user whose stored profile steered it), nothing is kept if that
        user was forgotten meanwhile (returns False)."""
        with self._write() as db:
            if incarnation is not None and user is not None:
                now = self._user(db, namespace, user)
                if now is None or now[0] != incarnation:
                    return False
            db.execute("DELETE FROM user_completions WHERE created < ?", (time.time() - self.completion_ttl,))
            db.execute(
                "INSERT INTO user_completions (id, namespace, user, record, created, response, model, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    completion_id,
                    namespace,
                    user,
                    record.model_dump_json() if record else "null",
                    time.time(),
                    response,
                    model,
                    json.dumps(dict(metadata or {}), sort_keys=True),
                ),
            )
            return True

    def completion_response(self, namespace: str, completion_id: str) -> str | None:
        """The answer a steered completion gave (its JSON), while it is kept."""
        with self._read() as db:
            row = db.execute(
                "SELECT response FROM user_completions WHERE namespace = ? AND id = ? AND created >= ?",
                (namespace, completion_id, time.time() - self.completion_ttl),
            ).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def completion_responses(
        self,
        namespace: str,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        after: str | None = None,
        limit: int = 20,
        newest_first: bool = False,
    ) -> tuple[list[str], bool]:
        """Kept completions' answers (their JSON) in the order they were made, as OpenAI lists
        stored completions: of one model, with every given metadata pair, after the one named
        ``after``; and whether there are more."""
        wanted = dict(metadata or {})
        sign = "<" if newest_first else ">"
        with self._read() as db:
            since = time.time() - self.completion_ttl
            start = None
            if after is not None:
                row = db.execute(
                    "SELECT rowid FROM user_completions WHERE namespace = ? AND id = ?", (namespace, after)
                ).fetchone()
                if row is None:
                    raise InputError(f"after: no completion {after!r} is stored on this service")
                start = row[0]
            rows = db.execute(
                "SELECT response, metadata FROM user_completions WHERE namespace = ? AND created >= ? "
                "AND response IS NOT NULL AND (? IS NULL OR model = ?) "
                f"AND (? IS NULL OR rowid {sign} ?) ORDER BY rowid {'DESC' if newest_first else 'ASC'}",
                (namespace, since, model, model, start, start),
            )
            found: list[str] = []
            for response, meta in rows:
                kept = json.loads(meta or "{}")
                if all(kept.get(k) == v for k, v in wanted.items()):
                    found.append(str(response))
                    if len(found) > limit:
                        return found[:limit], True
        return found, False

    def completion(self, namespace: str, completion_id: str) -> tuple[str | None, ChoiceRecord | None] | None:
        with self._read() as db:
            row = db.execute(
                "SELECT user, record FROM user_completions WHERE namespace = ? AND id = ? AND created >= ?",
                (namespace, completion_id, time.time() - self.completion_ttl),
            ).fetchone()
        if row is None:
            return None
        return row[0], None if row[1] == "null" else ChoiceRecord.model_validate_json(row[1])
