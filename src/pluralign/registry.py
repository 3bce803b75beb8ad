"""One registry for every kind of pluggable component (methods, judge backends).

A component module registers its spec when it is imported; the registry imports every
module of its package on first use, so a new component is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from pluralign.errors import InputError


class Spec(Protocol):
    @property
    def name(self) -> str: ...


S = TypeVar("S", bound=Spec)


class Registry(Generic[S]):
    """Specs by name, for one package; ``order`` lists the names shown first."""

    def __init__(self, kind: str, package: str, order: Sequence[str] = ()) -> None:
        self.kind = kind
        self.package = package
        self.order = list(order)
        self._specs: dict[str, S] = {}
        self._discovered = False

    def register(self, spec: S) -> S:
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)

    def _discover(self) -> None:
        if self._discovered:
            return
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{self.package}.{module.name}")
        self._discovered = True

    def rediscover(self) -> None:
        """Look through the package's folders again (after a folder was added to its path)."""
        self._discovered = False

    def all(self) -> dict[str, S]:
        self._discover()

        def rank(name: str) -> tuple[int, str]:
            return (self.order.index(name) if name in self.order else len(self.order), name)

        return {name: self._specs[name] for name in sorted(self._specs, key=rank)}

    def get(self, name: str) -> S:
        known = self.all()
        if name not in known:
            raise InputError(f"unknown {self.kind} {name!r} (choose from {', '.join(known)})")
        return known[name]
