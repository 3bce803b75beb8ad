"""Where pluralign keeps rows: an embedded SQLite file (the default, nothing to install) or a
PostgreSQL server that many replicas and workers share.

Every store (people's choices and profiles, the judgement cache) opens its database through
:func:`open_database`, the one door a ``--db``/``--cache`` value passes: a path is a SQLite
file, a ``postgresql://`` URL a server (its password registered for redaction), any other URL
is refused in one line. Both engines offer the same :class:`Database` seam, a transaction that
yields a connection taking ``?`` placeholders, so a store writes its SQL once; the DDL of each
engine lives in the store's own schema module.
"""

from __future__ import annotations

from pathlib import Path

from pluralign.storage.base import Connection, Database
from pluralign.storage.place import (
    DEFAULT_POOL,
    DatabasePlace,
    PoolSize,
    PostgresURL,
    check_pool,
    is_server,
    parse_place,
    sqlite_file,
)

__all__ = [
    "DEFAULT_POOL",
    "Connection",
    "Database",
    "DatabasePlace",
    "PoolSize",
    "PostgresURL",
    "check_pool",
    "is_server",
    "open_database",
    "parse_place",
    "sqlite_file",
]


def open_database(place: str | Path, option: str, *, pool_size: int = DEFAULT_POOL) -> Database:
    """The database ``place`` names (see :func:`parse_place`), opened for ``option``'s store."""
    found = parse_place(place, option)
    if isinstance(found, PostgresURL):
        from pluralign.storage.postgres import PostgresDatabase

        return PostgresDatabase(found, option, pool_size=pool_size)
    from pluralign.storage.sqlite import SQLiteDatabase

    return SQLiteDatabase(found, option)
