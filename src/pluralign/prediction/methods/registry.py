"""The method registry: each method module registers a :class:`MethodSpec` once, with its
options model, and the CLI help, ``pluralign methods``, the server and validation read from
here. Built-in methods are found through :data:`INDEX`, installed ones through the
``pluralign.methods`` entry points (:mod:`pluralign.support.registry`); building a method from
settings is :func:`pluralign.settings.build_method`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pluralign.support.options import NoOptions, Options
from pluralign.support.registry import Registry

if TYPE_CHECKING:
    from pluralign.choice.probes import Probe
    from pluralign.prediction.examples import ExampleOptions
    from pluralign.prediction.judges.base import Backend
    from pluralign.prediction.methods.base import Method

DEFAULT_METHOD = "spm"


class Resources(Protocol):
    """What a method may ask for besides its options, built on demand (the settings-backed
    implementation is :class:`pluralign.settings.SettingsResources`); declared
    here so that a method names what it needs without importing how it is built."""

    @property
    def default_estimator(self) -> Any: ...

    def judge(self) -> Backend:
        """The judge backend with its options, behind the judgement cache unless it is off."""
        ...

    def train_probes(self, options: ExampleOptions) -> list[Probe]:
        """Labelled examples for few-shot prompts."""
        ...

    def uses_builtin_bank(self, options: ExampleOptions) -> bool:
        """Whether the examples are pluralign's own bank."""
        ...


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
