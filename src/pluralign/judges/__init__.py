"""LLM judges: one protocol (:class:`Backend`), one module per backend.

Backends are imported lazily so that a user of one never needs the others' packages.
"""

from __future__ import annotations

from collections.abc import Sequence

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

BACKENDS = ("llamacpp", "openai", "transformers")


def make_backend(
    name: str,
    model: str,
    base_urls: Sequence[str] = (),
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 8,
    n_ctx: int = 8192,
) -> Backend:
    """Build a backend by name; options that a backend does not use are ignored."""
    if name == "llamacpp":
        from pluralign.judges.llamacpp import LlamaCppBackend

        return LlamaCppBackend(model, n_ctx=n_ctx)
    if name == "openai":
        from pluralign.judges.openai import OpenAIBackend

        return OpenAIBackend(
            model,
            base_urls=list(base_urls) or ["http://127.0.0.1:8000/v1"],
            api_key_env=api_key_env,
            concurrency=concurrency,
        )
    if name == "transformers":
        from pluralign.judges.transformers import TransformersBackend

        return TransformersBackend(model)
    raise InputError(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")


__all__ = [
    "BACKENDS",
    "Backend",
    "ChatMessage",
    "GenerationSettings",
    "JudgeRequest",
    "JudgeResult",
    "Usage",
    "make_backend",
    "parse_answer",
]
