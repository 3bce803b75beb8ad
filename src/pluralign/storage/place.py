"""What a ``--db``/``--cache`` value names: a SQLite file's path or a PostgreSQL server's URL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from pluralign.support.errors import InputError
from pluralign.support.redact import redact, register_url

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):/")
"""A URL's scheme, also after ``Path`` has folded its ``//`` into ``/``."""
POSTGRES_SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL = 8
"""Most connections a process holds to one PostgreSQL database when no option sizes its pool."""
PoolSize = Annotated[int, Field(ge=1, le=256)]
"""A ``--db-pool``/``--cache-pool`` value."""


class PostgresURL(str):
    """A ``postgresql://`` URL; its password is registered for redaction when it is parsed."""

    @property
    def shown(self) -> str:
        return redact(str(self))


def parse_place(place: str | Path, option: str) -> Path | PostgresURL:
    """A path is a SQLite file; a ``postgresql://`` (or ``postgres://``) URL a server. Any other
    URL is refused naming only its scheme: taken for a path it would become a folder named
    after the scheme with a new database inside, and the rest may hold a password."""
    text = str(place)
    if not text.strip():  # an unset variable: never the current folder
        raise InputError(f"{option} is empty: name a SQLite file or a postgresql:// URL")
    found = _URL.match(text)
    if found is None:
        return Path(place)
    scheme = found.group(1).lower()
    if scheme in POSTGRES_SCHEMES and text.lower().startswith(f"{scheme}://"):
        register_url(text)
        return PostgresURL(text)
    if scheme in POSTGRES_SCHEMES:  # a Path folded its // away: the URL is no longer what was typed
        raise InputError(f"{option}: give the {scheme}:// URL as typed (it lost a '/')")
    raise InputError(f"{option} names a {found.group(1)}: URL; it takes a SQLite file path or a postgresql:// URL")


def is_server(place: str | Path | None) -> bool:
    """Whether an option's value names a PostgreSQL server (None, the default, is a SQLite file)."""
    return place is not None and isinstance(parse_place(place, "it"), PostgresURL)


def check_pool(given: bool, place: str | Path | None, pool_option: str, place_option: str) -> None:
    """Refuse a pool size that a SQLite file would ignore (a ValueError, for an option model's
    validator): a size given for anything but a ``postgresql://`` place is a mistake to name."""
    if given and not is_server(place):
        raise ValueError(f"{pool_option} applies to a postgresql:// {place_option}")


def sqlite_file(place: str | Path, option: str) -> Path:
    """``place`` where only a SQLite file will do (a cache opened as a file, the batch backend's
    tables beside it): any URL is refused, naming only its scheme."""
    found = _URL.match(str(place))
    if found:
        raise InputError(f"{option} names a {found.group(1)}: URL; here it takes a SQLite file path")
    return Path(place)


def _place(value: Any) -> Any:
    """An option's database place, checked when the option is read (a URL's password
    registered for redaction before anything can print it)."""
    if isinstance(value, (str, Path)):
        try:
            return str(parse_place(value, "it"))
        except InputError as exc:
            raise ValueError(str(exc).removeprefix("it ").removeprefix("it: ")) from None
    return value


DatabasePlace = Annotated[str, BeforeValidator(_place)]
"""A database as an option (``--db``, ``--cache``): a SQLite file path or a ``postgresql://`` URL."""
