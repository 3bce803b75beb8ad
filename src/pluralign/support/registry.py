"""One registry for every kind of pluggable component (methods, judge backends): a lazy index.

Each kind has an index of its built-in components (name -> the module that registers it) and
an entry-point group (``pluralign.methods``, ``pluralign.backends``) through which another
installed package adds its own, as inspect_ai's provider index and lm-evaluation-harness's model
mapping do. A module is imported only when one of its components is asked for, or when all are
listed; a module beside the components that registers none (a cache, a call log) is never
imported as one.

An entry point names a module (``mypkg.longest``), which registers its spec when imported, or a
spec itself (``mypkg.longest:SPEC``), which the registry registers.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

from pluralign.support.errors import InputError, one_line

log = logging.getLogger("pluralign.registry")


class Spec(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=Spec)


class Registry(Generic[S]):
    """Specs by name for one kind of component; ``order`` lists the names shown first."""

    def __init__(
        self, kind: str, spec_type: type[Any], index: Mapping[str, str], group: str, order: Sequence[str] = ()
    ) -> None:
        self.kind = kind
        self.spec_type = spec_type
        self.index = dict(index)
        self.group = group
        self.order = list(order)
        self._specs: dict[str, S] = {}
        self._listed = False

    def register(self, spec: S) -> S:
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        return list(importlib.metadata.entry_points(group=self.group))

    def _load(self, entry: importlib.metadata.EntryPoint) -> None:
        loaded = entry.load()
        if isinstance(loaded, self.spec_type):
            self.register(loaded)  # type: ignore[arg-type]

    def _find(self, name: str) -> None:
        """Import what provides ``name``: the built-in module, else an installed entry point."""
        if name in self.index:
            importlib.import_module(self.index[name])
            return
        for entry in self._entry_points():
            if entry.name == name:
                try:
                    self._load(entry)
                except Exception as exc:  # a plugin's own fault, named as such
                    raise InputError(
                        f"the {self.kind} {name!r} from {entry.value} cannot be loaded: {one_line(exc)}"
                    ) from None
                return

    def all(self) -> dict[str, S]:
        """Every component, built-in and installed, in the order they are shown to users."""
        if not self._listed:
            for module in dict.fromkeys(self.index.values()):
                importlib.import_module(module)
            for entry in self._entry_points():
                try:
                    self._load(entry)
                except Exception as exc:  # one broken plugin never hides the rest
                    log.warning("%s %s from %s cannot be loaded: %s", self.kind, entry.name, entry.value, one_line(exc))
            self._listed = True

        def rank(name: str) -> tuple[int, str]:
            return (self.order.index(name) if name in self.order else len(self.order), name)

        return {name: self._specs[name] for name in sorted(self._specs, key=rank)}

    def relist(self) -> None:
        """Look for installed components again (after a package was installed in this process)."""
        self._listed = False

    def get(self, name: str) -> S:
        if name not in self._specs:
            self._find(name)
        if name not in self._specs:
            raise InputError(f"unknown {self.kind} {name!r} (choose from {', '.join(self.all())})")
        return self._specs[name]
