"""Candidates from an OpenAI-compatible server, through the one chat client the judge uses too
(:mod:`pluralign.prediction.chat_client`: the same retry policy, bounds and error messages).

``n`` = k is asked first; a server that refuses it (many answer 400) or returns fewer choices
gets the rest as separate requests, sent concurrently, one seed each. An httpx client belongs to
one event loop: the service keeps one for its loop, and a one-off call (``pluralign respond``)
opens and closes its own inside the loop it runs in.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from typing import Any

from pluralign.prediction.chat_client import ChatClient, RetryPolicy, UpstreamStatusError, gather_or_stop
from pluralign.prediction.generators.base import Candidates, Draw, GeneratorOptions
from pluralign.prediction.judges.base import ChatMessage, Usage
from pluralign.support.errors import InputError, UpstreamError

NOT_A_COMPLETION = "the generator answered something that is not a chat completion"


class OpenAIGenerator:
    in_process = False

    def __init__(self, options: GeneratorOptions) -> None:
        key = ""
        if options.generator_api_key_env:  # registered for redaction by the option itself
            key = os.environ.get(options.generator_api_key_env) or ""
            if not key:
                raise InputError(f"--generator-api-key-env {options.generator_api_key_env}: that variable is not set")
        assert options.generator_base_url
        self.model = options.generator_model or "default"
        self.client = ChatClient(
            [options.generator_base_url],
            key,
            options.generator_timeout,
            RetryPolicy(max_retries=1),
            concurrency=16,
            who="the generator",
        )
        self._http: Any = None

    async def _ask(
        self, http: Any, messages: list[dict[str, str]], draw: Draw, n: int, seed: int
    ) -> tuple[list[str], list[str], list[Any], Usage]:
        body: dict[str, Any] = dict(
            model=self.model, messages=messages, temperature=draw.temperature, max_tokens=draw.max_tokens, seed=seed
        )
        if n > 1:
            body["n"] = n
        optional = {
            "top_p": draw.top_p,
            "stop": draw.stop or None,
            "presence_penalty": draw.presence_penalty,
            "frequency_penalty": draw.frequency_penalty,
            "logit_bias": draw.logit_bias,
            "logprobs": draw.logprobs or None,
            "top_logprobs": (draw.top_logprobs or 0) if draw.logprobs else None,  # llama.cpp: none without it
            "response_format": draw.response_format,
        }
        body |= {k: v for k, v in optional.items() if v is not None}
        try:
            response = await self.client.complete(http, body)
        except UpstreamStatusError as exc:
            if n > 1 and 400 <= exc.status < 500:
                raise _NoN() from None
            raise
        try:
            payload = json.loads(response.content)
            choices = [c for c in payload["choices"] if isinstance(c.get("message", {}).get("content"), str)]
            texts = [c["message"]["content"] for c in choices]
            reasons = [str(c.get("finish_reason") or "stop") for c in choices]
            logprobs = [c.get("logprobs") if isinstance(c.get("logprobs"), dict) else None for c in choices]
            used = payload.get("usage") or {}
            usage = Usage(
                prompt_tokens=int(used.get("prompt_tokens") or 0),
                completion_tokens=int(used.get("completion_tokens") or 0),
            )
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            raise UpstreamError(NOT_A_COMPLETION) from None
        return texts, reasons, logprobs, usage

    async def _generate(self, http: Any, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        plain = [m.model_dump() for m in messages]
        texts: list[str] = []
        reasons: list[str] = []
        logprobs: list[Any] = []
        usage = Usage()
        try:
            texts, reasons, logprobs, usage = await self._ask(http, plain, draw, draw.k, draw.seed)
        except _NoN:
            pass
        missing = draw.k - len(texts)
        if missing > 0:  # one request per candidate, concurrently, a seed each
            asks = [self._ask(http, plain, draw, 1, draw.seed + len(texts) + i) for i in range(missing)]
            for more, why, lp, u in await gather_or_stop(asks):
                texts += more
                reasons += why
                logprobs += lp
                usage = usage + u
        usable = [(t, r, lp) for t, r, lp in zip(texts, reasons, logprobs, strict=True) if t.strip()][: draw.k]
        if not usable:
            raise UpstreamError("the generator returned no usable candidate")
        return Candidates(
            texts=[t for t, _, _ in usable],
            finish_reasons=[r for _, r, _ in usable],
            logprobs=[lp for _, _, lp in usable],
            usage=usage,
            model=self.model,
        )

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        """On a long-lived event loop (the service): one httpx client, kept until :meth:`aclose`."""
        if self._http is None:
            self._http = self.client.session()
        return await self._generate(self._http, messages, draw)

    def generate_sync(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        async def once() -> Candidates:
            async with self.client.session() as http:
                return await self._generate(http, messages, draw)

        return asyncio.run(once())

    async def ready(self) -> str | None:
        return await self.client.reachable()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def close(self) -> None:
        """A one-off call's client was closed inside its own event loop; nothing is held."""


class _NoN(Exception):
    """The server refused ``n`` > 1."""
