"""Candidates from a GGUF model in this process (llama-cpp-python), one seed per candidate.

The model is loaded on first use, and generation runs on a worker thread, one request at a
time (llama.cpp is not re-entrant), checking the request's deadline before every token.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Sequence
from typing import Any

from pluralign.prediction.generators.base import Candidates, Draw
from pluralign.prediction.judges.base import ChatMessage, Usage
from pluralign.prediction.weights import resolve_gguf
from pluralign.support import deadline
from pluralign.support.cpu import default_threads
from pluralign.support.errors import ContextLengthError

N_CTX = 4096


class LlamaCppGenerator:
    in_process = True

    def __init__(self, model: str, threads: int | None = None) -> None:
        self.model = model
        self._threads = threads
        self._llm: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            threads = self._threads or default_threads()
            llm = Llama(
                model_path=str(resolve_gguf(self.model)), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                verbose=False,
            )  # fmt: skip
            evaluate = llm.eval

            def checked(tokens: Any) -> Any:  # a deadline or a cancelled request stops within a token
                deadline.check()
                return evaluate(tokens)

            llm.eval = checked  # type: ignore[method-assign]
            self._llm = llm
        return self._llm

    def generate_sync(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        with self._lock:
            llm = self._load()
            texts, reasons, usage = [], [], Usage()
            for i in range(draw.k):
                try:
                    out = llm.create_chat_completion(
                        messages=[m.model_dump() for m in messages],
                        temperature=draw.temperature,
                        max_tokens=draw.max_tokens,
                        seed=draw.seed + i,
                    )
                except ValueError as exc:  # llama.cpp says a prompt does not fit with a ValueError
                    if "context window" in str(exc) or "exceed" in str(exc):
                        raise ContextLengthError(
                            f"the conversation does not fit the generator's context of {N_CTX} tokens ({exc})"
                        ) from None
                    raise
                texts.append(out["choices"][0]["message"]["content"] or "")
                reasons.append(out["choices"][0].get("finish_reason") or "stop")
                usage = usage + Usage(
                    prompt_tokens=out["usage"]["prompt_tokens"], completion_tokens=out["usage"]["completion_tokens"]
                )
        return Candidates(texts=texts, usage=usage, model=self.model, finish_reasons=reasons)

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        ctx = contextvars.copy_context()
        return await asyncio.to_thread(ctx.run, self.generate_sync, messages, draw)

    async def aclose(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None
