"""Saved profiles: named targets (a person's profile or a group) in the service's ``--profiles``
folder, one ``NAME.json`` each. Every door that names one (``/v1/profiles``, ``/v1/models``,
steering by ``pluralign.profile`` or ``model: pluralign/NAME``) goes through this one place.

The folder's top level is the operator's catalog, which every namespace reads. A namespace other
than ``default`` saves into its own subfolder, ``NAMESPACE/``, and reads it before the catalog:
one application's key can neither overwrite nor see another application's profiles, nor change
the catalog. Files are reached through :mod:`pluralign.support.folders` (never through a link,
only regular files) and read within :data:`MAX_BYTES`; a name is a label, never a path."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from pluralign.people.userstore_schema import DEFAULT_NAMESPACE
from pluralign.support.errors import InputError
from pluralign.support.folders import exists_under, list_under, read_json_under, write_json_under

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A saved profile's name (and so its file's stem): what ``fullmatch`` accepts."""
MAX_BYTES = 1 << 20
"""The most a saved profile's file may hold (a group of a few thousand members)."""
SUFFIX = ".json"


def check_name(name: str, where: str = "name") -> str:
    """``name`` if it may name a saved profile, else an InputError naming ``where``."""
    if not NAME.fullmatch(name):  # match() would let "ok\n" through
        raise InputError(f"{where}: use 1-64 letters, digits, _ or -")
    return name


def _regular(path: Path) -> bool:
    """Whether ``path`` is a regular file itself (not a link to one): only those are listed."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


class SavedProfiles:
    """The saved profiles a namespace sees in ``folder`` (None: the service keeps none)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _own(self, namespace: str) -> str:
        """The namespace's place, relative to the folder: the catalog itself for ``default``."""
        return "." if namespace == DEFAULT_NAMESPACE else namespace

    def _places(self, namespace: str) -> list[str]:
        own = self._own(namespace)
        return [own] if own == "." else [own, "."]

    def _rel(self, place: str, name: str) -> str:
        return name + SUFFIX if place == "." else f"{place}/{name}{SUFFIX}"

    def names(self, namespace: str) -> list[str]:
        """Every name the namespace can steer to: its own and the catalog's, sorted."""
        if self.folder is None or not self.folder.is_dir():
            return []
        found: set[str] = set()
        for place in self._places(namespace):
            try:
                entries = list_under(self.folder, place)
            except InputError:  # a namespace's place that is a link or a file: it holds nothing
                continue
            regular = [e for e in entries if e.endswith(SUFFIX) and _regular(self.folder / place / e)]
            found.update(e.removesuffix(SUFFIX) for e in regular)
        return sorted(n for n in found if NAME.fullmatch(n))

    def read(self, namespace: str, name: str, where: str = "name") -> Any:
        """The saved data under ``name`` (the namespace's own before the catalog's), or an
        InputError that says no profile of that name is saved."""
        check_name(name, where)
        if self.folder is not None:
            for place in self._places(namespace):
                rel = self._rel(place, name)
                if exists_under(self.folder, rel):
                    try:
                        return read_json_under(self.folder, rel, "saved profile", MAX_BYTES)
                    except InputError as exc:  # a link, a pipe, bad JSON
                        raise self._unplaced(exc, where) from None
        raise InputError(f"{where}: no saved profile named {name!r}")

    def save(self, namespace: str, name: str, data: Any) -> None:
        """Write ``data`` under ``name`` in the namespace's own place (atomically; an earlier
        profile of that name in the same place is replaced, as saving again means)."""
        if self.folder is None:
            raise InputError("this server was started without --profiles")
        check_name(name)
        try:
            write_json_under(self.folder, self._rel(self._own(namespace), name), data)
        except InputError as exc:  # a link or a file where the namespace's place should be
            raise self._unplaced(exc, "name") from None

    def _unplaced(self, exc: InputError, where: str) -> InputError:
        """``exc`` said without the server's path to the folder, which callers need not know."""
        return type(exc)(f"{where}: {str(exc).replace(str(self.folder), '<profiles>')}")


__all__ = ["MAX_BYTES", "NAME", "SavedProfiles", "check_name"]
