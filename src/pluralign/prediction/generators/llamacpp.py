"""Candidates from a GGUF model in this process: the judge's own llama.cpp backend writes them.

One model per process: the generator asks :meth:`LlamaCppBackend.shared` for the backend of its
model with the judge's llama.cpp options (``--n-ctx``, ``--gpu-layers``, ``--threads``), so when
it names the judge's model (the default) the weights are loaded once and the candidates are
free-text passes of the judge's decoder, drawn together (one forward pass a step for all k),
one seed each. Generation runs on the service's judge worker, under the request's deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import Any

from pluralign.prediction.generators.base import Candidates, Draw
from pluralign.prediction.judges.base import ChatMessage, Usage
from pluralign.support.errors import UnsupportedParameter


def refuse_what_llama_cannot(draw: Draw) -> None:
    """The sampling settings the local model cannot honour are refused, naming them."""
    for name in ("presence_penalty", "frequency_penalty", "logit_bias"):
        if getattr(draw, name) is not None:
            raise UnsupportedParameter(name, "the local generator does not support it; use a server generator")
    if draw.logprobs:
        raise UnsupportedParameter("logprobs", "the local generator gives no log-probabilities; use a server generator")


def _schema(draw: Draw) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (``json_object``: any object), or None."""
    fmt = draw.response_format or {}
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        inner = fmt.get("json_schema") or {}
        schema = inner.get("schema") if isinstance(inner, dict) else None
        if not isinstance(schema, dict):
            raise UnsupportedParameter("response_format", "json_schema needs json_schema.schema, an object")
        return schema
    return None


def _cut(text: str, stops: Sequence[str], reason: str) -> tuple[str, str]:
    """The text up to the first stop sequence (which ends it: finish reason ``stop``)."""
    ends = [text.find(s) for s in stops if s and s in text]
    return (text[: min(ends)], "stop") if ends else (text, reason)


class LlamaCppGenerator:
    in_process = True

    def __init__(self, model: str, options: Any = None) -> None:
        """``options``: the judge's :class:`~pluralign.prediction.judges.llamacpp.LlamaCppOptions`."""
        self.model = model
        self._options = options
        self._backend: Any = None

    def _loaded(self) -> Any:
        if self._backend is None:
            from pluralign.prediction.judges.llamacpp import LlamaCppBackend

            self._backend = LlamaCppBackend.shared(self.model, self._options)
        return self._backend

    def generate_sync(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        refuse_what_llama_cannot(draw)
        answers = self._loaded().write(
            messages, draw.k, draw.temperature, draw.max_tokens, draw.seed, draw.top_p or 0.95, _schema(draw)
        )
        usage = Usage()
        texts, reasons = [], []
        for a in answers:
            usage = usage + a.usage
            text, reason = _cut(a.text, draw.stop, a.finish_reason)
            texts.append(text)
            reasons.append(reason)
        return Candidates(texts=texts, finish_reasons=reasons, usage=usage, model=self.model)

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        ctx = contextvars.copy_context()
        return await asyncio.to_thread(ctx.run, self.generate_sync, messages, draw)

    async def ready(self) -> str | None:
        return None

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()  # the last user of the shared model frees it
            self._backend = None
