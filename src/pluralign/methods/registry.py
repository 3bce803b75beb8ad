"""The method registry: each method module registers itself once, and the CLI help,
``pluralign methods``, the server and validation read from here.

Every module of this package is imported on first use, so a new method is one new file
that calls :func:`register_method`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pluralign.errors import InputError
from pluralign.settings import Settings

if TYPE_CHECKING:
    from pluralign.judges.base import Backend
    from pluralign.methods.base import Method
    from pluralign.probes import Probe


@dataclass(frozen=True)
class MethodSpec:
    """A method: its name, one line of help, how to build it, and what it needs.

    ``build`` receives the settings (with the method's defaults applied) and a
    :class:`Resources` that builds the judge and loads examples only when asked.
    """

    name: str
    summary: str
    build: Callable[[Settings, Resources], Method]
    needs_llm: bool = False
    target_dependent: bool = False
    default_samples: int = 1
    options: tuple[str, ...] = field(default_factory=tuple)


class Resources:
    """What a method may need besides its settings, built on demand."""

    def __init__(self, settings: Settings, namespace: str) -> None:
        self.settings = settings
        self.namespace = namespace

    def judge(self) -> Backend:
        """The judge backend, behind the judgement cache unless it is switched off."""
        from pluralign.cache import CachedBackend, JudgementCache, default_cache_path
        from pluralign.judges import make_backend

        if self.settings.backend == "batch" and not self.settings.cache:
            raise InputError("--backend batch stores its answers in the judgement cache; drop --no-cache")
        backend = make_backend(self.settings)
        if self.settings.cache:
            cache = JudgementCache(self.settings.cache_path or default_cache_path())
            return CachedBackend(backend, cache, self.namespace)
        return backend

    def train_probes(self) -> list[Probe]:
        """Labelled examples: ``--examples``, else the benchmark's train set, else the shipped bank."""
        from pluralign.data.benchmark import load_probes
        from pluralign.icl import builtin_bank

        s = self.settings
        if s.examples is not None:
            return load_probes(s.examples / "train.json" if s.examples.is_dir() else s.examples)
        if s.benchmark_dir is not None and (s.benchmark_dir / "train.json").exists():
            return load_probes(s.benchmark_dir / "train.json")
        return builtin_bank()


_METHODS: dict[str, MethodSpec] = {}
_discovered = False


def register_method(spec: MethodSpec) -> MethodSpec:
    _METHODS[spec.name] = spec
    return spec


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import pluralign.methods as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _discovered = True


def methods() -> dict[str, MethodSpec]:
    """Every registered method, in the order they are listed for users."""
    _discover()
    order = ["spm", "spm-zeroshot", "regression", "unaligned", "prompt-aligned"]
    return dict(sorted(_METHODS.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 99, kv[0])))


def method_spec(name: str) -> MethodSpec:
    known = methods()
    if name not in known:
        raise InputError(f"unknown method {name!r} (choose from {', '.join(known)})")
    return known[name]


def build_method(name: str, settings: Settings | None = None) -> Method:
    """The named method, configured by ``settings`` (defaults when None)."""
    spec = method_spec(name)
    settings = settings or Settings()
    return spec.build(settings, Resources(settings, name))
