"""People's choices and fitted profiles, and the steered completions they can answer to: one
database, an embedded SQLite file by default or a PostgreSQL server that many replicas share
(:mod:`pluralign.storage`), every change in a transaction, versioned migrations
(:mod:`pluralign.people.userstore_schema`).

User names are labels in rows, never parts of a path. Every row belongs to a **namespace**
(the service key that made it: one application's users are invisible to another's).

Consistency rules, each enforced inside one write transaction that holds the user's lock (an
advisory lock on PostgreSQL, the file's write lock on SQLite), so they hold across replicas:

* A user's stored profile is always the fit of their stored history: a choice and the profile
  fitted with it are committed together (:meth:`UserStore.commit_choice`), and only if the
  history the fit read is still the stored one (the user's ``revision``). A feedback that lost
  a race fits again; one that fails stores nothing.
* A forgotten user stays forgotten: each user row has an ``incarnation`` (an id never reused),
  and each name a count of its forgets, so work that read a user (or the absence of one) before
  :meth:`forget` can tell that the user it read is gone and writes nothing (:class:`UserForgotten`).
* Feedback on one completion is idempotent: one choice per (user, completion), replaced in
  place if the person changes their mind.
* Completions are kept for a bounded time (``completion_ttl``) and then trimmed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralign.people.profile import ChoiceRecord
from pluralign.people.userstore_schema import prepare
from pluralign.storage import DEFAULT_POOL, Database, open_database
from pluralign.storage.base import Connection
from pluralign.support.errors import InputError, PluralignError
from pluralign.support.home import home

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
    forgets: int = 0
    """How many times the name had been forgotten when it was read."""

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
    def __init__(
        self,
        place: str | Path | None = None,
        completion_ttl: float = DEFAULT_COMPLETION_TTL,
        pool_size: int = DEFAULT_POOL,
    ) -> None:
        """Open the store ``place`` names (a SQLite path or a ``postgresql://`` URL; default: a
        file in pluralign's home), creating or migrating its tables."""
        self.db: Database = open_database(place if place is not None else default_path(), "--db", pool_size=pool_size)
        self.completion_ttl = completion_ttl
        try:
            prepare(self.db)
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def ping(self) -> None:
        """A read of the store (an error naming the database if it cannot be read)."""
        with self.db.read() as db:
            db.execute("SELECT count(*) FROM meta").fetchone()

    @staticmethod
    def _user(db: Connection, namespace: str, user: str) -> tuple[int, int] | None:
        """The user's (incarnation, revision)."""
        row = db.execute(
            "SELECT incarnation, revision FROM users WHERE namespace = ? AND name = ?", (namespace, user)
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    @staticmethod
    def _forgets(db: Connection, namespace: str, user: str) -> int:
        row = db.execute(
            "SELECT forgets FROM user_forgets WHERE namespace = ? AND name = ?", (namespace, user)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def _lock(self, db: Connection, namespace: str, user: str) -> None:
        """This user's writes take turns, on every replica, until the transaction ends."""
        self.db.lock(db, json.dumps(["pluralign user", namespace, user]))

    # -- histories and profiles ----------------------------------------------------------------
    def snapshot(self, namespace: str, user: str) -> UserSnapshot:
        """The user as stored now (one read transaction)."""
        with self.db.read() as db:
            found = self._user(db, namespace, user)
            forgets = self._forgets(db, namespace, user)
            if found is None:
                return UserSnapshot(namespace, user, forgets=forgets)
            rows = db.execute(
                "SELECT completion_id, record FROM user_choices WHERE incarnation = ? ORDER BY id", (found[0],)
            ).fetchall()
        history = [StoredChoice(r[0], ChoiceRecord.model_validate_json(r[1])) for r in rows]
        return UserSnapshot(namespace, user, found[0], found[1], history, forgets)

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
        with self.db.write() as db:
            self._lock(db, read.namespace, read.user)
            now = self._user(db, read.namespace, read.user)
            gone = read.incarnation is not None and (now is None or now[0] != read.incarnation)
            if gone or self._forgets(db, read.namespace, read.user) != read.forgets:
                raise UserForgotten(f"user {read.user!r} was forgotten while this request ran; nothing was stored")
            if (now[1] if now is not None else 0) != read.revision:
                raise HistoryChanged(f"user {read.user!r} gave other feedback meanwhile")
            if now is None:  # a new user; one made meanwhile by another replica is a history that moved on
                made = db.execute(
                    "INSERT INTO users (namespace, name, revision) VALUES (?, ?, 0) "
                    "ON CONFLICT (namespace, name) DO NOTHING RETURNING incarnation",
                    (read.namespace, read.user),
                ).fetchone()
                if made is None:
                    raise HistoryChanged(f"user {read.user!r} gave other feedback meanwhile")
                incarnation = int(made[0])
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
                "INSERT INTO user_profiles (incarnation, profile, n_choices, revision, updated) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (incarnation) DO UPDATE SET profile = excluded.profile, "
                "n_choices = excluded.n_choices, revision = excluded.revision, updated = excluded.updated",
                (incarnation, json.dumps(profile), fitted_on, revision, stamp),
            )
            count = db.execute("SELECT COUNT(*) FROM user_choices WHERE incarnation = ?", (incarnation,)).fetchone()
            return int(count[0])

    def profile(self, namespace: str, user: str) -> StoredProfile | None:
        with self.db.read() as db:
            row = db.execute(
                "SELECT p.profile, p.n_choices, u.incarnation FROM users u JOIN user_profiles p "
                "ON p.incarnation = u.incarnation WHERE u.namespace = ? AND u.name = ?",
                (namespace, user),
            ).fetchone()
        return None if row is None else StoredProfile(json.loads(row[0]), int(row[1]), int(row[2]))

    def forget(self, namespace: str, user: str) -> int:
        """Delete a user's history, profile and completions; returns the rows removed. Work that
        read this user before cannot write them back (their incarnation is gone for good)."""
        with self.db.write() as db:
            self._lock(db, namespace, user)
            db.execute(
                "INSERT INTO user_forgets (namespace, name, forgets) VALUES (?, ?, 1) "
                "ON CONFLICT (namespace, name) DO UPDATE SET forgets = user_forgets.forgets + 1",
                (namespace, user),
            )
            removed = 0
            found = self._user(db, namespace, user)
            if found is not None:
                for table in ("user_choices", "user_profiles"):
                    removed += db.execute(f"DELETE FROM {table} WHERE incarnation = ?", (found[0],)).rowcount
                db.execute("DELETE FROM users WHERE incarnation = ?", (found[0],))
            removed += db.execute(
                'DELETE FROM user_completions WHERE namespace = ? AND "user" = ?', (namespace, user)
            ).rowcount
            return removed

    def users(self, namespace: str) -> Sequence[str]:
        with self.db.read() as db:
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
        with self.db.write() as db:
            if incarnation is not None and user is not None:
                self._lock(db, namespace, user)
                now = self._user(db, namespace, user)
                if now is None or now[0] != incarnation:
                    return False
            db.execute("DELETE FROM user_completions WHERE created < ?", (time.time() - self.completion_ttl,))
            db.execute(
                'INSERT INTO user_completions (id, namespace, "user", record, created, response, model, metadata) '
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
        with self.db.read() as db:
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
        order = self.db.order_column
        sql = (
            "SELECT response, metadata FROM user_completions "
            "WHERE namespace = ? AND created >= ? AND response IS NOT NULL"
        )
        with self.db.read() as db:
            params: list[Any] = [namespace, time.time() - self.completion_ttl]
            if after is not None:
                row = db.execute(
                    f"SELECT {order} FROM user_completions WHERE namespace = ? AND id = ?", (namespace, after)
                ).fetchone()
                if row is None:
                    raise InputError(f"after: no completion {after!r} is stored on this service")
                sql += f" AND {order} {'<' if newest_first else '>'} ?"
                params.append(row[0])
            if model is not None:
                sql += " AND model = ?"
                params.append(model)
            found: list[str] = []
            for response, meta in db.execute(f"{sql} ORDER BY {order} {'DESC' if newest_first else 'ASC'}", params):
                kept = json.loads(meta or "{}")
                if all(kept.get(k) == v for k, v in wanted.items()):
                    found.append(str(response))
                    if len(found) > limit:
                        return found[:limit], True
        return found, False

    def completion(self, namespace: str, completion_id: str) -> tuple[str | None, ChoiceRecord | None] | None:
        with self.db.read() as db:
            row = db.execute(
                'SELECT "user", record FROM user_completions WHERE namespace = ? AND id = ? AND created >= ?',
                (namespace, completion_id, time.time() - self.completion_ttl),
            ).fetchone()
        if row is None:
            return None
        return row[0], None if row[1] == "null" else ChoiceRecord.model_validate_json(row[1])
