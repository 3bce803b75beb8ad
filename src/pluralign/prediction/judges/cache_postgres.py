"""The judgement cache in a PostgreSQL database that many workers and replicas share.

Same keys and answers as the SQLite file (:class:`~pluralign.prediction.judges.cache.JudgementCache`);
in addition, **claims**: a worker that is about to judge a request claims its key, so a second
worker waits for the answer (or judges something else) instead of asking the judge again."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pluralign.prediction.judges.base import JudgeResult
from pluralign.prediction.judges.cache_schema import (
    APPLICATION,
    CLAIM,
    POSTGRES_OWN,
    POSTGRES_TABLES,
    PUT,
    SCHEMA_VERSION,
)
from pluralign.storage import DEFAULT_POOL, PostgresURL, open_database
from pluralign.support.errors import CacheError, InputError, NotACacheError


class PostgresJudgementCache:
    shared = True

    def __init__(self, url: PostgresURL, pool_size: int = DEFAULT_POOL) -> None:
        self.db = open_database(url, "--cache", pool_size=pool_size)
        self.path = self.db.label
        try:
            self._prepare()
        except BaseException:
            self.db.close()
            raise

    def _prepare(self) -> None:
        with self.db.write() as db:
            self.db.lock(db, APPLICATION)  # workers that start together take turns
            tables = self.db.tables(db)
            mark = None
            if "judgement_meta" in tables:
                row = db.execute("SELECT value FROM judgement_meta WHERE key = 'application'").fetchone()
                mark = row and row[0]
            if mark != APPLICATION and tables & POSTGRES_OWN:
                raise NotACacheError(f"--cache {self.path} holds tables of another program (judgements, ...)")
            for statement in POSTGRES_TABLES:
                db.execute(statement)
            for key, value in (("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION))):
                db.execute(
                    "INSERT INTO judgement_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, value)
                )

    def get(self, key: str) -> JudgeResult | None:
        with self.db.read() as db:
            row = db.execute("SELECT result FROM judgements WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            result = JudgeResult.model_validate_json(row[0])
        except ValueError:
            raise CacheError(f"cache {self.path} holds an unreadable entry for {key[:12]}") from None
        return result.model_copy(update={"cached": True})

    def put(self, key: str, backend: str, model: str, method: str, result: JudgeResult) -> None:
        with self.db.write() as db:
            db.execute(PUT, (key, backend, model, method, result.model_dump_json(), time.time()))

    def claim(self, keys: Sequence[str], owner: str, seconds: float) -> set[str]:
        """The keys ``owner`` may judge now (free, its own, or lapsed), claimed for ``seconds``."""
        now = time.time()
        with self.db.write() as db:
            for key in sorted(keys):  # one order for every worker: two claims never deadlock
                db.execute(CLAIM, (key, owner, now + seconds, now))
            rows = db.execute(
                f"SELECT key FROM judgement_claims WHERE owner = ? AND key IN ({', '.join('?' * len(keys))})",
                (owner, *keys),
            ).fetchall()
        return {r[0] for r in rows}

    def release(self, keys: Sequence[str], owner: str) -> None:
        with self.db.write() as db:
            for key in keys:
                db.execute("DELETE FROM judgement_claims WHERE key = ? AND owner = ?", (key, owner))

    def stats(self) -> dict[str, Any]:
        with self.db.read() as db:
            rows = db.execute(
                "SELECT backend, model, method, COUNT(*) FROM judgements GROUP BY backend, model, method"
            ).fetchall()
            size = db.execute("SELECT pg_total_relation_size('judgements')").fetchone()[0]
        return {
            "path": self.path,
            "entries": sum(int(r[3]) for r in rows),
            "bytes": int(size or 0),
            "by_model": [{"backend": r[0], "model": r[1], "method": r[2], "entries": int(r[3])} for r in rows],
        }

    def clear(self) -> int:
        with self.db.write() as db:
            n = db.execute("DELETE FROM judgements").rowcount
            db.execute("DELETE FROM judgement_claims")
        return int(n)

    def sql(self, query: str, params: Sequence[Any] = ()) -> list[Any]:
        raise InputError(
            f"--cache {self.path}: the batch backend keeps its requests and answers beside a SQLite cache; "
            "give --cache a file for batch runs"
        )

    def close(self) -> None:
        self.db.close()
