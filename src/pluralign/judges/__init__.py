"""LLM judges: one protocol (:class:`Backend`), one module per backend.

Each backend module registers itself with :func:`register_backend` when it is imported;
importing it is cheap (heavy libraries load when a backend is built), and every module of
this package is imported on first use of the registry, so a new backend is one new file.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from pluralign.errors import InputError
from pluralign.judges.base import (
    Backend,
    ChatMessage,
    GenerationSettings,
    JudgeRequest,
    JudgeResult,
    Usage,
    parse_answer,
)
from pluralign.settings import Settings


@dataclass(frozen=True)
class BackendSpec:
    """A judge backend: its name, one line of help, how to build it from settings, and the
    settings it reads (for help)."""

    name: str
    summary: str
    build: Callable[[Settings], Backend]
    options: tuple[str, ...] = ()


_BACKENDS: dict[str, BackendSpec] = {}
_discovered = False


def register_backend(spec: BackendSpec) -> BackendSpec:
    _BACKENDS[spec.name] = spec
    return spec


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    _discovered = True


def backends() -> dict[str, BackendSpec]:
    _discover()
    return dict(sorted(_BACKENDS.items()))


def backend_spec(name: str) -> BackendSpec:
    known = backends()
    if name not in known:
        raise InputError(f"unknown backend {name!r} (choose from {', '.join(known)})")
    return known[name]


def make_backend(settings: Settings) -> Backend:
    """The backend that ``settings.backend`` names, built from the settings."""
    return backend_spec(settings.backend).build(settings)


__all__ = [
    "Backend",
    "BackendSpec",
    "ChatMessage",
    "GenerationSettings",
    "JudgeRequest",
    "JudgeResult",
    "Usage",
    "backend_spec",
    "backends",
    "make_backend",
    "parse_answer",
    "register_backend",
]
