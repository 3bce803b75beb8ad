"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, llama.cpp servers, OpenAI).

Requests in a batch run concurrently (bounded), spread round-robin over several base URLs so
one run can use several replicas, through the one chat client (:mod:`pluralign.prediction.chat_client`:
retries with backoff honouring ``Retry-After``, a bound on the whole answer and its size); answers
that are not valid JSON for the schema are re-asked.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pluralign.prediction.chat_client import ChatClient, RetryPolicy, gather_or_stop, text_of
from pluralign.prediction.judges import BackendSpec, register_backend
from pluralign.prediction.judges.base import AnswerCollector, JudgeRequest, JudgeResult, RawAnswer, Usage
from pluralign.prediction.places import Places, Turn
from pluralign.support.errors import JudgeError, UpstreamError, one_line
from pluralign.support.options import Options, cli
from pluralign.support.redact import SecretEnv, SecretURL

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"

if TYPE_CHECKING:  # httpx loads when the backend sends, not when the CLI reads its options
    import httpx


def chat_body(model: str, request: JudgeRequest, seed: int, mode: str = "json_schema") -> dict[str, Any]:
    """The ``/v1/chat/completions`` body for one answer: the batch backend writes the same
    bodies to files, so an offline batch and an online run ask exactly the same thing."""
    s = request.settings
    body: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump() for m in request.messages],
        "temperature": s.temperature,
        "max_tokens": s.max_tokens,
        "seed": seed,
    }
    if mode == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "judgement", "schema": request.json_schema, "strict": True},
        }
    else:  # llama-cpp-python's server and older servers
        body["response_format"] = {"type": "json_object", "schema": request.json_schema}
    if s.top_logprobs:
        body["logprobs"] = True
        body["top_logprobs"] = s.top_logprobs
    return body


def _count(value: Any, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UpstreamError(f"the server reported {what} {value!r}, not a count of tokens")
    return value


def parse_completion(payload: Any) -> RawAnswer:
    """A chat completion's text, usage and log-probabilities; anything that is not a
    completion raises UpstreamError (a 502 in the service), never a bare exception."""
    try:
        choice = payload["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        shown = one_line(str(payload), 200)
        raise UpstreamError(f"the server's answer has no choices[0].message.content: {shown}") from None
    if not isinstance(text, str):
        raise UpstreamError(f"the server's message content is a {type(text).__name__}, not text")
    usage_raw = payload.get("usage") or {}
    if not isinstance(usage_raw, dict):
        raise UpstreamError(f"the server's usage is {usage_raw!r}, not an object")
    usage = Usage(
        prompt_tokens=_count(usage_raw.get("prompt_tokens"), "prompt_tokens"),
        completion_tokens=_count(usage_raw.get("completion_tokens"), "completion_tokens"),
    )
    tokens = logprobs = None
    try:
        content = (choice.get("logprobs") or {}).get("content")
        if content:
            tokens = [str(c["token"]) for c in content]
            logprobs = [{str(t["token"]): float(t["logprob"]) for t in c.get("top_logprobs", [])} for c in content]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UpstreamError("the server's logprobs are not in the OpenAI format") from None
    return RawAnswer(text=text, usage=usage, tokens=tokens, logprobs=logprobs)


ResponseFormat = Literal["auto", "json_schema", "json_object"]


class ResponseFormatOption(Options):
    response_format: ResponseFormat = Field(
        default="auto",
        description="How servers are asked for JSON: json_schema (vLLM, OpenAI), json_object with a schema "
        "(llama.cpp's server), or auto (try the first, fall back to the second).",
        json_schema_extra=cli(),
    )


class OpenAIOptions(ResponseFormatOption):
    """What can be set about a judge behind an OpenAI-compatible server."""

    base_urls: list[SecretURL] = Field(
        default_factory=lambda: [DEFAULT_BASE_URL],
        min_length=1,
        validate_default=True,
        description="OpenAI-compatible base URL (a query such as ?api-version= is kept); repeat for replicas.",
        json_schema_extra=cli("--base-url"),
    )
    judge_api_key_env: SecretEnv = Field(
        default="OPENAI_API_KEY",
        min_length=1,
        validate_default=True,
        description="Environment variable holding the judge server's API key.",
        json_schema_extra=cli(old=("--api-key-env", "--backend-api-key-env")),
    )
    concurrency: int = Field(
        default=8, ge=1, description="Concurrent requests per server (openai).", json_schema_extra=cli()
    )
    timeout: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        allow_inf_nan=False,
        description="Seconds one upstream call may take (openai).",
        json_schema_extra=cli(),
    )
    max_retries: int = Field(
        default=4, ge=0, description="Retries of a failed upstream call (openai).", json_schema_extra=cli()
    )
    backoff: float = Field(default=0.5, ge=0, description="First wait before a retry, doubled each time.")
    max_backoff: float = Field(default=30.0, ge=0, description="Longest wait before a retry.")


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, options: OpenAIOptions | None = None) -> None:
        options = options or OpenAIOptions()
        if not options.base_urls:
            raise JudgeError("the openai backend needs at least one --base-url")
        self.model = model
        self.response_format = options.response_format
        self.client = ChatClient(
            options.base_urls,
            os.environ.get(options.judge_api_key_env, ""),  # registered for redaction by the option
            options.timeout,
            RetryPolicy(options.max_retries, options.backoff, options.max_backoff),
            options.concurrency,
        )
        self.base_urls = self.client.base_urls
        self.concurrency = options.concurrency
        self.concurrent_requests = options.concurrency * len(self.base_urls)
        self.timeout = options.timeout
        self._learning = Places(1)
        """Held by the request that learns the server's form while ``response_format`` is auto."""

    def _body(self, request: JudgeRequest, seed: int, mode: str) -> dict[str, Any]:
        return chat_body(self.model, request, seed, mode)

    async def _post(self, http: httpx.AsyncClient, request: JudgeRequest, seed: int) -> RawAnswer:
        """With ``auto``, the first request alone learns which form the server takes and the others
        wait for it (sent together, every one would be refused and sent again, and a one-slot
        server would take the second tries in another order: 53-61 s against 50-51 s for 20
        requests at 64 places); then every request goes straight out in that form."""
        if self.response_format == "auto":
            async with self._learning.hold():
                if self.response_format == "auto":
                    return await self._ask(http, request, seed)
        return await self._ask(http, request, seed)

    async def _ask(self, http: httpx.AsyncClient, request: JudgeRequest, seed: int) -> RawAnswer:
        mode = "json_schema" if self.response_format in ("auto", "json_schema") else "json_object"

        def older_form(response: httpx.Response) -> dict[str, Any] | None:
            """A server that knows only ``json_object`` refuses ``json_schema``: ask it that way,
            and every later request too."""
            if (
                response.status_code in (400, 422, 500)
                and self.response_format in ("auto", "json_object")
                and mode == "json_schema"
                and "json_schema" in response.text
            ):
                self.response_format = "json_object"
                return self._body(request, seed, "json_object")
            return None

        response = await self.client.complete(http, self._body(request, seed, mode), older_form)
        if self.response_format == "auto":  # answered in the newer form: the server takes it
            self.response_format = "json_schema"
        return self._parse(response)

    def _parse(self, response: httpx.Response) -> RawAnswer:
        try:
            payload = json.loads(response.content)
        except (ValueError, RecursionError):
            return RawAnswer(text=text_of(response)[:2000])  # broken JSON: re-asked as an invalid answer
        return parse_completion(payload)

    async def _one(self, http: httpx.AsyncClient, request: JudgeRequest, turn: Turn) -> JudgeResult:
        async with self.client.places.hold(turn):
            collector = AnswerCollector(request, f"openai:{self.model}")
            for seed in collector.seeds():
                collector.offer(await self._post(http, collector.current, seed))
            return collector.result()

    async def _run(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """All requests of a batch (every sample of every attribute of an item) go out
        together, those that share a prefix side by side, bounded by ``concurrency`` per server
        across every batch in flight (the client's places)."""
        places = self.client.places
        async with self.client.session() as http:
            turns = places.line_up(len(requests))  # in one step: another thread's batch never cuts in
            try:
                return await gather_or_stop([self._one(http, r, t) for r, t in zip(requests, turns, strict=True)])
            finally:
                places.drop(turns)

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        import asyncio

        if not requests:
            return []
        return asyncio.run(self._run(requests))

    async def ready(self) -> str | None:
        return await self.client.reachable()

    def close(self) -> None:
        """Connections are per batch; nothing to release."""


register_backend(
    BackendSpec(
        name="openai",
        summary="any OpenAI-compatible server: vLLM, SGLang, Ollama, llama.cpp, OpenAI",
        build=lambda model, options, cache: OpenAIBackend(model, options),
        options=OpenAIOptions,
    )
)
