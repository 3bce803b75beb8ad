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
        answers = self._loaded().write(messages, draw.k, draw.temperature, draw.max_tokens, draw.seed)
        usage = Usage()
        for a in answers:
            usage = usage + a.usage
        return Candidates(
            texts=[a.text for a in answers],
            finish_reasons=[a.finish_reason for a in answers],
            usage=usage,
            model=self.model,
        )

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        ctx = contextvars.copy_context()
        return await asyncio.to_thread(ctx.run, self.generate_sync, messages, draw)

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()  # the last user of the shared model frees it
            self._backend = None
