"""Candidates from an OpenAI-compatible server, through the official ``openai`` client.

``n`` = k is asked first; a server that refuses it (many answer 400) or returns fewer
choices gets the rest as separate requests, sent concurrently, one seed each. A client
belongs to one event loop: the service keeps one for its loop, and a one-off call
(``pluralign respond``) opens and closes its own inside the loop it runs in, so nothing is left
to close after that loop is gone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from pluralign.prediction.generators.base import Candidates, Draw, GeneratorOptions
from pluralign.prediction.judges.base import ChatMessage, Usage
from pluralign.prediction.judges.openai import context_error
from pluralign.support import deadline
from pluralign.support.errors import ContextLengthError, InputError, UpstreamError, one_line


class OpenAIGenerator:
    in_process = False

    def __init__(self, options: GeneratorOptions) -> None:
        self._key = "none"
        if options.generator_api_key_env:  # registered for redaction by the option itself
            self._key = os.environ.get(options.generator_api_key_env) or ""
            if not self._key:
                raise InputError(f"--generator-api-key-env {options.generator_api_key_env}: that variable is not set")
        assert options.generator_base_url
        self._options = options
        self.model = options.generator_model or "default"
        self._client: Any = None

    def _new_client(self) -> Any:
        import openai

        return openai.AsyncOpenAI(
            base_url=self._options.generator_base_url,
            api_key=self._key,
            timeout=self._options.generator_timeout,
            max_retries=1,
        )

    async def _ask(
        self, client: Any, messages: list[dict[str, str]], draw: Draw, n: int, seed: int
    ) -> tuple[list[str], list[str], Usage]:
        import openai

        kwargs: dict[str, Any] = dict(
            model=self.model, messages=messages, temperature=draw.temperature, max_tokens=draw.max_tokens, seed=seed
        )
        if n > 1:
            kwargs["n"] = n
        timeout = deadline.bound(self._options.generator_timeout)
        try:
            out = await client.chat.completions.create(**kwargs, timeout=timeout)
        except openai.APIStatusError as exc:
            ctx = context_error(str(exc.message))
            if ctx is not None:
                raise ContextLengthError(f"the conversation does not fit the generator's context: {ctx}") from None
            if n > 1 and 400 <= exc.status_code < 500:
                raise _NoN() from None
            raise UpstreamError(f"the generator answered {exc.status_code}: {one_line(exc.message)[:200]}") from None
        except openai.APIError as exc:
            raise UpstreamError(f"the generator could not be reached: {one_line(exc)[:200]}") from None
        except ValueError:  # a body that is not JSON
            raise UpstreamError("the generator answered something that is not a chat completion") from None
        try:
            kept = [c for c in out.choices if c.message is not None and isinstance(c.message.content, str)]
            texts = [c.message.content for c in kept]
            reasons = [str(c.finish_reason or "stop") for c in kept]
            usage = Usage()
            if out.usage is not None:
                usage = Usage(prompt_tokens=out.usage.prompt_tokens, completion_tokens=out.usage.completion_tokens)
        except (TypeError, AttributeError, ValueError):  # choices or usage of the wrong shape
            raise UpstreamError("the generator answered something that is not a chat completion") from None
        return texts, reasons, usage

    async def _generate(self, client: Any, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        plain = [m.model_dump() for m in messages]
        texts: list[str] = []
        reasons: list[str] = []
        usage = Usage()
        try:
            texts, reasons, usage = await self._ask(client, plain, draw, draw.k, draw.seed)
        except _NoN:
            pass
        missing = draw.k - len(texts)
        if missing > 0:  # one request per candidate, concurrently, a seed each
            asks = [self._ask(client, plain, draw, 1, draw.seed + len(texts) + i) for i in range(missing)]
            for more, why, u in await asyncio.gather(*asks):
                texts += more
                reasons += why
                usage = usage + u
        usable = [(t, r) for t, r in zip(texts, reasons, strict=True) if t.strip()]
        if len(usable) < 2:
            raise UpstreamError(f"the generator returned {len(usable)} usable candidates; at least 2 are needed")
        usable = usable[: draw.k]
        return Candidates(
            texts=[t for t, _ in usable], finish_reasons=[r for _, r in usable], usage=usage, model=self.model
        )

    async def generate(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        """On a long-lived event loop (the service): one client, kept until :meth:`aclose`."""
        if self._client is None:
            self._client = self._new_client()
        return await self._generate(self._client, messages, draw)

    def generate_sync(self, messages: Sequence[ChatMessage], draw: Draw) -> Candidates:
        async def once() -> Candidates:
            client = self._new_client()
            try:
                return await self._generate(client, messages, draw)
            finally:
                await client.close()

        return asyncio.run(once())

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class _NoN(Exception):
    """The server refused ``n`` > 1."""
