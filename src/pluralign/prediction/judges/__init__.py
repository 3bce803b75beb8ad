"""LLM judges: one protocol (:class:`Backend`), one module per backend.

Each backend module registers a :class:`BackendSpec` when it is imported, with its own
options model (:class:`pluralign.support.options.Options`) next to its code; importing it is
cheap (heavy libraries load when a backend is built). Built-in backends are found through
:data:`INDEX`, installed ones through the ``pluralign.backends`` entry points
(:mod:`pluralign.support.registry`), so another package adds a backend without editing this one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from pluralign.prediction.judges.base import (
    Backend,
    ChatMessage,
    GenerationSettings,
    JudgeRequest,
    JudgeResult,
    Usage,
    parse_answer,
)
from pluralign.support.options import NoOptions, Options, cli
from pluralign.support.registry import Registry
from pluralign.support.strict import Filled

DEFAULT_BACKEND = "llamacpp"
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class JudgeOptions(Options):
    """Which judge: the backend and the model it runs (every backend takes a model)."""

    backend: str = Field(
        default=DEFAULT_BACKEND, description="Judge backend (see `pluralign backends`).", json_schema_extra=cli()
    )
    model: Filled = Field(
        default=DEFAULT_MODEL,
        description="Offline alias, .gguf path, HF id (online), or a served model name.",
        json_schema_extra=cli(),
    )


@dataclass(frozen=True)
class BackendSpec:
    """A judge backend: its name, one line of help, its options model, and how to build it
    from a model name, its options and the judgement cache (``None`` when switched off; only
    a backend whose answers arrive through the cache, ``answers_from_cache``, reads it).

    ``default_estimator`` is what ``--estimator auto`` means on this backend."""

    name: str
    summary: str
    build: Callable[[str, Any, Any], Backend]
    options: type[Options] = NoOptions
    default_estimator: Literal["sample", "logprobs"] = "sample"
    answers_from_cache: bool = False


INDEX = {
    "llamacpp": "pluralign.prediction.judges.llamacpp",
    "openai": "pluralign.prediction.judges.openai",
    "transformers": "pluralign.prediction.judges.transformers",
    "batch": "pluralign.prediction.judges.batch",
}
"""The built-in backends and the modules that register them; the package's other modules (the
cache, the prefix store, the call log, the decoder) are never imported as backends."""
ENTRY_POINTS = "pluralign.backends"

BACKENDS: Registry[BackendSpec] = Registry("backend", BackendSpec, INDEX, ENTRY_POINTS)
register_backend = BACKENDS.register


def backends() -> dict[str, BackendSpec]:
    return BACKENDS.all()


def backend_spec(name: str) -> BackendSpec:
    return BACKENDS.get(name)


def make_backend(backend: str, model: str, options: Options | None = None, cache: Any = None) -> Backend:
    """The named backend, built with its options (its defaults when None)."""
    spec = backend_spec(backend)
    return spec.build(model, options if options is not None else spec.options(), cache)


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_MODEL",
    "Backend",
    "BackendSpec",
    "ChatMessage",
    "GenerationSettings",
    "JudgeOptions",
    "JudgeRequest",
    "JudgeResult",
    "Usage",
    "backend_spec",
    "backends",
    "make_backend",
    "parse_answer",
    "register_backend",
]
