"""The method registry: each method module registers a :class:`MethodSpec` once, with its
options model, and the CLI help, ``pluralign methods``, the server and validation read from
here. Built-in methods are found through :data:`INDEX`, installed ones through the
``pluralign.methods`` entry points (:mod:`pluralign.support.registry`); building a method from
settings is :mod:`pluralign.prediction.methods.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pluralign.support.options import NoOptions, Options
from pluralign.support.registry import Registry

if TYPE_CHECKING:
    from pluralign.prediction.methods.base import Method
    from pluralign.prediction.methods.build import Resources

DEFAULT_METHOD = "spm"


@dataclass(frozen=True)
class MethodSpec:
    """A method: its name, one line of help, its options model, how to build it from its
    options and :class:`Resources`, and whether it asks the LLM judge (then the judge's
    options and the cache's apply to it too)."""

    name: str
    summary: str
    build: Callable[[Any, Resources], Method]
    options: type[Options] = NoOptions
    needs_llm: bool = False

    @property
    def default_samples(self) -> int | None:
        return getattr(self.options, "default_samples", None)


INDEX = {
    "spm": "pluralign.prediction.methods.spm",
    "spm-zeroshot": "pluralign.prediction.methods.spm",
    "regression": "pluralign.prediction.methods.regression",
    "unaligned": "pluralign.prediction.methods.choice",
    "prompt-aligned": "pluralign.prediction.methods.choice",
    "embedding": "pluralign.prediction.methods.embedding",
    "length": "pluralign.prediction.methods.length",
    "reward-model": "pluralign.prediction.methods.reward_model",
    "random": "pluralign.prediction.methods.simple",
    "oracle": "pluralign.prediction.methods.simple",
}
"""The built-in methods and the modules that register them (nothing else is imported as one)."""
ENTRY_POINTS = "pluralign.methods"

METHODS: Registry[MethodSpec] = Registry(
    "method",
    MethodSpec,
    INDEX,
    ENTRY_POINTS,
    order=("spm", "spm-zeroshot", "regression", "unaligned", "prompt-aligned"),
)
register_method = METHODS.register


def methods() -> dict[str, MethodSpec]:
    """Every registered method, in the order they are listed for users."""
    return METHODS.all()


def method_spec(name: str) -> MethodSpec:
    return METHODS.get(name)
