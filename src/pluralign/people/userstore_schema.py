"""The user store's SQLite schema and the migrations that bring an older file to it.

Kept apart from :mod:`pluralign.people.userstore` so the rules about rows (what a transaction
may write) read apart from how the tables came to be.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

SCHEMA_VERSION = 3
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


def script(db: sqlite3.Connection, sql: str) -> None:
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


MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _migrate_1_to_2, 3: _migrate_2_to_3}
"""Schema version -> the step that brings the version before it there (run in one transaction)."""
