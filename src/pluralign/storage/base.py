"""The seam both engines offer a store: transactions over connections that take ``?``
placeholders and answer with DB-API cursors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Cursor: ...


class Database(Protocol):
    """One store's database. ``write()`` is one transaction that commits when the block ends
    (rolled back if it raises) and holds the locks a read-modify-write needs; ``read()`` sees one
    consistent snapshot. ``lock(db, key)`` inside ``write()`` holds a named lock until commit: what
    a store takes before it reads and writes rows that belong together (one user's), so writers
    of the same key take turns on every engine."""

    @property
    def engine(self) -> Literal["sqlite", "postgresql"]: ...

    @property
    def label(self) -> str:
        """How the database is named in messages (a path, or the URL with its password masked)."""
        ...

    def lock(self, db: Connection, key: str) -> None: ...

    @property
    def order_column(self) -> str:
        """A column that orders a table's rows by insertion (``rowid``, or an identity column)."""
        ...

    def write(self) -> AbstractContextManager[Connection]: ...

    def read(self) -> AbstractContextManager[Connection]: ...

    def tables(self, db: Connection) -> set[str]:
        """The tables ``db``'s transaction sees (to recognise a database before changing it)."""
        ...

    def close(self) -> None: ...
