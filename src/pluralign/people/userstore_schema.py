"""The user store's schema on both engines, and the migrations that bring an older database to
it: :func:`prepare` is the one step a store takes before its first row.

Kept apart from :mod:`pluralign.people.userstore` so the rules about rows (what a transaction
may write) read apart from how the tables came to be. SQLite files carry their version in
``meta`` and pluralign's mark in the header (``application_id``); a PostgreSQL database carries
both in ``meta`` and starts at version 3 (its first). Replicas that start together take turns
under an advisory lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from pluralign.storage import Database
from pluralign.storage.base import Connection
from pluralign.support.errors import InputError

SCHEMA_VERSION = 4
APPLICATION_ID = 0x706C7575  # "pluu" in the SQLite header: this file is a pluralign user store
APPLICATION = "pluralign user store"
"""The mark in a PostgreSQL database's ``meta`` table."""
DEFAULT_NAMESPACE = "default"
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


SCHEMA_POSTGRES_V3 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    incarnation BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, name)
);
CREATE TABLE IF NOT EXISTS user_choices (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incarnation BIGINT NOT NULL REFERENCES users (incarnation) ON DELETE CASCADE,
    completion_id TEXT,
    record TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    UNIQUE (incarnation, completion_id)
);
CREATE INDEX IF NOT EXISTS user_choices_in_order ON user_choices (incarnation, id);
CREATE TABLE IF NOT EXISTS user_profiles (
    incarnation BIGINT PRIMARY KEY REFERENCES users (incarnation) ON DELETE CASCADE,
    profile TEXT NOT NULL,
    n_choices INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS user_completions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    "user" TEXT,
    record TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL,
    response TEXT,
    model TEXT,
    metadata TEXT,
    PRIMARY KEY (namespace, id)
);
CREATE INDEX IF NOT EXISTS user_completions_by_user ON user_completions (namespace, "user");
CREATE INDEX IF NOT EXISTS user_completions_by_age ON user_completions (created)
"""

FORGETS = """
CREATE TABLE IF NOT EXISTS user_forgets (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    forgets INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
)
"""


def _add_forgets(db: Any) -> None:
    """v4 counts each name's forgets, so a feedback that read a user who did not exist yet can
    tell that the user was forgotten while it worked (same on both engines)."""
    db.execute(FORGETS)


POSTGRES_MIGRATIONS: dict[int, Callable[[Connection], None]] = {4: _add_forgets}
"""PostgreSQL's steps after version 3: version -> the step that brings the one before it
there, run in the transaction that holds the schema lock."""


def script(db: Any, sql: str) -> None:
    """Statements one by one (``executescript`` would commit the transaction they belong to)."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """v1 kept rows by user name with no namespace: they join the default namespace."""
    script(db, SCHEMA_V2)
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
        "INSERT OR IGNORE INTO user_completions (id, namespace, user, record, created) "
        "SELECT id, ?, user, record, created FROM completions",
        (DEFAULT_NAMESPACE,),
    )
    for table in ("choices", "profiles", "completions"):
        db.execute(f"DROP TABLE {table}")


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """v3 keeps the answer a steered completion gave, its model and its metadata, for
    ``GET /v1/chat/completions/{id}`` and the stored-completions list."""
    db.execute("ALTER TABLE user_completions ADD COLUMN response TEXT")
    db.execute("ALTER TABLE user_completions ADD COLUMN model TEXT")
    db.execute("ALTER TABLE user_completions ADD COLUMN metadata TEXT")


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _migrate_1_to_2, 3: _migrate_2_to_3, 4: _add_forgets}
"""SQLite's steps: schema version -> the step that brings the version before it there (run in
one transaction)."""


def _meta(db: Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(db: Connection, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _version(db: Connection, tables: set[str]) -> int:
    row = _meta(db, "schema_version") if "meta" in tables else None
    return int(row) if row is not None and row.isdigit() else 0


def _bring_up(db: Connection, version: int, where: str, first: tuple[int, str], steps: dict[int, Any]) -> None:
    """From ``version`` (0: a new store, made with ``first``'s schema at its version) through every
    step to this pluralign's version, on either engine; a newer store is refused."""
    if version > SCHEMA_VERSION:
        raise InputError(
            f"--db {where}: schema version {version}, this pluralign reads up to {SCHEMA_VERSION}; "
            "use a newer pluralign or another database"
        )
    if version == 0:
        version, schema = first
        script(db, schema)
    for step in range(version + 1, SCHEMA_VERSION + 1):
        steps[step](db)
    _set_meta(db, "schema_version", str(SCHEMA_VERSION))


def prepare(database: Database) -> None:
    """Create or migrate the store's tables, after making sure the database is one of ours (or
    empty): another program's database is refused and left exactly as it was."""
    if database.engine == "postgresql":
        _prepare_postgres(database)
    else:
        _prepare_sqlite(database)


def _prepare_postgres(database: Database) -> None:
    with database.write() as db:
        database.lock(db, APPLICATION)  # replicas that start together take turns
        tables = database.tables(db)
        ours = "meta" in tables and _meta(db, "application") == APPLICATION
        if not ours and tables & {"meta", "users", "user_choices", "user_profiles", "user_completions"}:
            raise InputError(
                f"--db {database.label} holds tables of another program (meta, users, ...), not a pluralign "
                "user store; name another database or schema"
            )
        _bring_up(db, _version(db, tables), database.label, (3, SCHEMA_POSTGRES_V3), POSTGRES_MIGRATIONS)
        _set_meta(db, "application", APPLICATION)


def _prepare_sqlite(database: Any) -> None:
    if database.exists():  # recognised read-only first: a foreign file stays as it was
        try:
            with database.read_only() as probe:
                _recognise_sqlite(probe, database.tables(probe), database.label)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"--db {database.label} is not a pluralign user store ({exc})") from None
    with database.write() as db:
        tables = database.tables(db)
        _recognise_sqlite(db, tables, database.label)
        _bring_up(db, _version(db, tables), database.label, (2, SCHEMA_V2), MIGRATIONS)  # a new file: v2, then on
        db.execute(f"PRAGMA application_id={APPLICATION_ID}")


def _recognise_sqlite(db: sqlite3.Connection, tables: set[str], label: str) -> None:
    """Only a user store of ours (or an empty file) is opened."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    if app_id == APPLICATION_ID or not tables:
        return
    if app_id == 0 and "meta" in tables and tables <= V1_TABLES:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is not None and row[0] == "1":
            return  # a user store of v0.2, before the mark existed
    raise InputError(f"--db {label} is a database of another program, not a pluralign user store")
