"""Candidates from an OpenAI-compatible server, through the official ``openai`` client.

``n`` = k is asked first; a server that refuses it (many answer 400) or returns fewer
choices gets the rest as separate requests, sent concurrently, one seed each.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from pluralign import deadline
from pluralign.errors import InputError, UpstreamError, one_line
from pluralign.generators import Candidates, Draw, GeneratorOptions
from pluralign.judges.base import ChatMessage, Usage


class OpenAIGenerator:
    in_process = False

    def __init__(self, options: GeneratorOptions) -> None:
        import openai

        key = "none"
        if options.generator_api_key_env:
            key = os.environ.get(options.generator_api_key_env) or ""
            if not key:
                raise InputError(f"--generator-api-key-env {options.generator_api_key_env}: that variable is not set")
        assert options.generator_base_url
        self.model = options.generator_model or "default"
        self._client = openai.AsyncOpenAI(
            base_url=options.generator_base_url, api_key=key, timeout=options.generator_timeout, max_retries=1
        )

    async def _ask(self, messages: list[dict[str, str]], draw: Draw, n: int, seed: int) -> tuple[list[str], Usage]:
        import openai

        kwargs: dict[str, Any] = dict(
            model=self.model, messages=messages, temperature=draw.temperature, max_tokens=draw.max_tokens, seed=seed
        )
        if n > 1:
            kwargs["n"] = n
        timeout = deadline.bound(self._client.timeout if isinstance(self._client.timeout, float) else 120.0)
        try:
            out = await self._client.chat.completions.create(**kwargs, timeout=timeout)
        except openai.APIStatusError as exc:
            if n > 1 and 400 <= exc.status_code < 500:
                raise _NoN() from None
            raise UpstreamError(f"the generator answered {exc.status_code}: {one_line(exc.message)[:200]}") from None
        except openai.APIError as exc:
            raise UpstreamError(f"the generator could not be reached: {one_line(exc)[:200]}") from None
        except ValueError:  # a body that is not JSON
            raise UpstreamError("the generator answered something that is not a chat completion") from None
        try:
            answers = [c.message for c in out.choices if c.message is not None]
            texts = [m.content for m in answers if isinstance(m.content, str)]
            usage = Usage()
            if out.usage is not None:
                usage = Usage(prompt_tokens=out.usage.prompt_tokens, completion_tokens=out.usage.completion_tokens)
        except (TypeError, AttributeError, ValueError):  # choices or usage of the wrong shape
            raise UpstreamError("the generator answered something that is not a chat completion") from None
        return texts, usage

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        plain = [m.model_dump() for m in messages]
        texts: list[str] = []
        usage = Usage()
        try:
            texts, usage = await self._ask(plain, draw, draw.k, draw.seed)
        except _NoN:
            pass
        missing = draw.k - len(texts)
        if missing > 0:  # one request per candidate, concurrently, a seed each
            asks = [self._ask(plain, draw, 1, draw.seed + len(texts) + i) for i in range(missing)]
            for more, u in await asyncio.gather(*asks):
                texts += more
                usage = usage + u
        texts = [t for t in texts if isinstance(t, str) and t.strip()]
        if len(texts) < 2:
            raise UpstreamError(f"the generator returned {len(texts)} usable candidates; at least 2 are needed")
        return Candidates(texts=texts[: draw.k], usage=usage, model=self.model)

    def generate_sync(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        return asyncio.run(self.generate(messages, draw))

    async def aclose(self) -> None:
        await self._client.close()


class _NoN(Exception):
    """The server refused ``n`` > 1."""
