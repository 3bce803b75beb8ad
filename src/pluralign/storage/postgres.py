"""The shared engine: a PostgreSQL server that many replicas and workers use at once, through a
pool of connections (psycopg 3 and psycopg_pool).

Why psycopg with our own migrations rather than SQLAlchemy and Alembic: the stores are a
handful of tables whose SQL is written once for both engines behind one small seam
(:class:`pluralign.storage.base.Database`); the SQLite files carry their own marks and
versions from before this engine existed, and a schema step is a few statements run under an
advisory lock in one transaction. Alembic would add a second migration history beside the
SQLite one and a dependency every embedded user pays for."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from pluralign.storage.place import DEFAULT_POOL, PostgresURL
from pluralign.support.errors import DatabaseUnavailable, InputError, one_line

CONNECT_SECONDS = 5.0
WAIT_SECONDS = 5.0
"""How long a request waits for a pooled connection before it is refused (503)."""


class _Connection:
    """A psycopg connection that takes the ``?`` placeholders the stores write."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))


class PostgresDatabase:
    """A PostgreSQL database. Writes run at READ COMMITTED, and those that read-modify-write hold
    a transaction-scoped advisory lock on what they change (:meth:`lock`); reads see one snapshot
    (REPEATABLE READ, read only)."""

    engine: Literal["postgresql"] = "postgresql"
    order_column = "seq"

    def __init__(self, url: PostgresURL, option: str, pool_size: int = DEFAULT_POOL) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise InputError(
                f"{option}: a postgresql:// database needs psycopg; pip install 'pluralign[postgres]'"
            ) from None
        self.option = option
        self.label = url.shown
        self.pool = ConnectionPool(
            str(url),
            min_size=1,
            max_size=max(1, pool_size),
            open=False,
            timeout=WAIT_SECONDS,
            check=ConnectionPool.check_connection,
            kwargs={"connect_timeout": int(CONNECT_SECONDS), "application_name": "pluralign"},
            name="pluralign",
        )
        try:
            with self._unavailable():
                # one connection first: a server that is down is said at once, with libpq's reason
                psycopg.connect(str(url), connect_timeout=int(CONNECT_SECONDS)).close()
                self.pool.open(wait=True, timeout=CONNECT_SECONDS * 2)
        except BaseException:
            self.pool.close(timeout=0)
            raise

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Connection failures (refused, lost mid-transaction, no pooled connection in time) as
        :class:`DatabaseUnavailable`; any other database error names the database."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise DatabaseUnavailable(f"{self.option} {self.label} is unavailable ({_reason(exc)})") from None
        except psycopg.Error as exc:
            raise InputError(f"{self.option} {self.label}: {_reason(exc)}") from None

    @contextmanager
    def write(self) -> Iterator[_Connection]:
        with self._unavailable(), self.pool.connection() as conn:
            yield _Connection(conn)

    @contextmanager
    def read(self) -> Iterator[_Connection]:
        with self._unavailable(), self.pool.connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _Connection(conn)

    def lock(self, db: Any, key: str) -> None:
        db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    def tables(self, db: Any) -> set[str]:
        return {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def close(self) -> None:
        self.pool.close(timeout=5.0)


def _reason(exc: BaseException) -> str:
    """libpq's first line (the rest repeats the connection's details)."""
    text = one_line(str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
    return text[:200]
