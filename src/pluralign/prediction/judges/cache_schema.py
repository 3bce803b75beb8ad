"""The judgement cache's tables on both engines: a SQLite file marks itself in its header
(``application_id``), a PostgreSQL database in ``judgement_meta``. Claims let workers that share
one cache judge each request once between them (see :class:`~pluralign.prediction.judges.cache.CachedBackend`)."""

from __future__ import annotations

SCHEMA_VERSION = 2
APPLICATION = "pluralign judgement cache"

SQLITE_JUDGEMENTS = (
    "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, backend TEXT, model TEXT, "
    "method TEXT, result TEXT NOT NULL, created REAL NOT NULL)"
)

POSTGRES_TABLES = (
    "CREATE TABLE IF NOT EXISTS judgement_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS judgements (key TEXT PRIMARY KEY, backend TEXT, model TEXT, "
    "method TEXT, result TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS judgement_claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "expires DOUBLE PRECISION NOT NULL)",
)
POSTGRES_OWN = {"judgement_meta", "judgements", "judgement_claims"}

PUT = (
    "INSERT INTO judgements (key, backend, model, method, result, created) VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET backend = excluded.backend, model = excluded.model, "
    "method = excluded.method, result = excluded.result, created = excluded.created"
)
CLAIM = (
    "INSERT INTO judgement_claims (key, owner, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
    "SET owner = excluded.owner, expires = excluded.expires "
    "WHERE judgement_claims.owner = excluded.owner OR judgement_claims.expires < ?"
)
"""A claim is taken when nobody holds it, renewed by its owner, and taken over once it lapsed
(its worker died)."""
