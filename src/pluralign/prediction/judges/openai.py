"""Any OpenAI-compatible chat endpoint (vLLM, SGLang, Ollama, llama.cpp servers, OpenAI).

Requests in a batch run concurrently (bounded), spread round-robin over several base URLs
so one run can use several replicas. Transient failures (429, 5xx, timeouts, refused
connections) are retried with exponential backoff, honouring ``Retry-After``; answers that
are not valid JSON for the schema are re-asked.
"""

from __future__ import annotations

import email.utils
import itertools
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pluralign.prediction.judges import BackendSpec, register_backend
from pluralign.prediction.judges.base import AnswerCollector, JudgeRequest, JudgeResult, RawAnswer, Usage
from pluralign.support import deadline
from pluralign.support.errors import (
    BackendUnavailableError,
    ContextLengthError,
    DeadlineExceeded,
    InputError,
    JudgeError,
    UpstreamError,
)
from pluralign.support.options import Options, cli
from pluralign.support.redact import SecretEnv, SecretURL, redact, shorten

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"

if TYPE_CHECKING:  # httpx and asyncio load when the backend sends, not when the CLI reads its options
    import asyncio

    import httpx

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
SERVER_FAULTS = {500}
"""Retried, and then a fault of the server (502 to our clients); the other retried statuses say
the server is busy or cannot be reached (503)."""
_CTX_PATTERNS = (
    re.compile(r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S),
    re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)"),
)


MAX_RESPONSE_BYTES = 16_000_000
"""A larger answer is not a judgement (an endless stream, a runaway server): it is cut off."""


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from ``Retry-After`` (a number or an HTTP date); None for anything else ("soon")."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def check_base_url(url: str) -> str:
    """A base URL httpx can use (http or https with a host), or a one-line error; the URL is
    shown without its user and password."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise InputError(f"--base-url {redact(url)!r} is not a valid URL ({redact(str(exc))})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host or any(ch.isspace() for ch in url):
        raise InputError(f"--base-url {redact(url)!r} must be an http:// or https:// URL with a host")
    return url.rstrip("/")


def _status_error(url: str, status: int, response: httpx.Response, body: str) -> UpstreamError:
    """What a non-retryable answer means for the person who configured the URL."""
    shown = shorten(body)
    if 300 <= status < 400:
        where = redact(response.headers.get("location", "?"))
        return UpstreamError(f"{url} answered a redirect ({status}) to {where}; give the final URL as --base-url")
    if status in (401, 403):
        return UpstreamError(f"{url} refused the API key ({status}): check the key's environment variable")
    if status == 404:
        return UpstreamError(f"{url} has no /chat/completions (404): check --base-url (it usually ends in /v1)")
    return UpstreamError(f"{url} answered {status}: {shown}")


def context_error(text: str) -> ContextLengthError | None:
    """The error an OpenAI-compatible server's context-overflow message means (None: not one)."""
    first = _CTX_PATTERNS[0].search(text)
    if first:
        have, need = int(first.group(1)), int(first.group(2))
    else:
        second = _CTX_PATTERNS[1].search(text)
        if not second:
            return None
        need, have = int(second.group(1)), int(second.group(2))
    return ContextLengthError(
        f"prompt needs {need} tokens but the model's context holds {have} ({need - have} too many)"
    )


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
        raise UpstreamError(f"the server's answer has no choices[0].message.content: {shorten(str(payload))}") from None
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


class _TooLarge(Exception):
    """The server's answer passed MAX_RESPONSE_BYTES."""


def _text(response: httpx.Response) -> str:
    return response.content.decode("utf-8", errors="replace")


async def _post_bounded(client: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: float) -> httpx.Response:
    """POST with the answer read in chunks, refused past MAX_RESPONSE_BYTES."""
    import httpx

    async with client.stream("POST", url, json=body, timeout=timeout) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise _TooLarge(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            chunks.append(chunk)
    # the chunks are already decoded: the copy must not claim an encoding or a length of its own
    headers = [(k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")]
    return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=response.request)


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
        description="OpenAI-compatible base URL; repeat for replicas.",
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
        self.base_urls = [check_base_url(u) for u in options.base_urls]
        self._shown_urls = {u: redact(u) for u in self.base_urls}
        self._api_key = os.environ.get(options.judge_api_key_env, "")  # registered for redaction by the option
        self.concurrency = options.concurrency
        self.timeout = options.timeout
        self.max_retries = options.max_retries
        self.backoff = options.backoff
        self.max_backoff = options.max_backoff
        self.response_format = options.response_format
        self._rr = itertools.cycle(range(len(self.base_urls)))
        self._rr_lock = threading.Lock()

    def _next_url(self) -> str:
        with self._rr_lock:
            return self.base_urls[next(self._rr)]

    def _body(self, request: JudgeRequest, seed: int, mode: str) -> dict[str, Any]:
        return chat_body(self.model, request, seed, mode)

    async def _post(self, client: httpx.AsyncClient, request: JudgeRequest, seed: int) -> RawAnswer:
        import asyncio

        import httpx

        last = ""
        answered: int | None = None  # the status of the last try, if the server answered at all
        for attempt in range(self.max_retries + 1):
            deadline.check()
            url = self._next_url()
            shown = self._shown_urls[url]
            mode = "json_schema" if self.response_format in ("auto", "json_schema") else "json_object"
            timeout = deadline.bound(self.timeout)
            try:
                response = await self._send(client, f"{url}/chat/completions", self._body(request, seed, mode), timeout)
                if (
                    response.status_code in (400, 422, 500)
                    and self.response_format == "auto"
                    and mode == "json_schema"
                    and "json_schema" in response.text
                ):
                    self.response_format = "json_object"  # the server only knows the older form
                    response = await self._send(
                        client, f"{url}/chat/completions", self._body(request, seed, "json_object"), timeout
                    )
            except (TimeoutError, httpx.RequestError, _TooLarge) as exc:
                timed_out = isinstance(exc, (httpx.TimeoutException, TimeoutError))
                if timed_out and timeout < self.timeout:
                    # the decision's deadline, not --timeout, bounded this call: it is that
                    # deadline which passed (a hair later than the call's own timer)
                    limit = deadline.current()
                    left = limit.remaining() if limit is not None else None
                    if left is not None and 0 < left < 1.0:
                        await asyncio.sleep(left)
                deadline.check()
                kind = exc.__class__.__name__
                if timed_out:
                    kind += f" (no complete answer within {timeout:g} s)"
                last = shorten(f"{shown}: {kind} {exc}".strip(), 300)
                wait, answered = None, None
            else:
                if response.status_code == 200:
                    return self._parse(response)
                text = _text(response)[:2000]
                ctx = context_error(text)
                if ctx is not None:
                    raise ctx
                if response.status_code not in RETRY_STATUS:
                    raise _status_error(shown, response.status_code, response, text)
                last = f"{shown} answered {response.status_code}: {shorten(text, 200)}"
                wait, answered = _retry_after(response), response.status_code
            if attempt == self.max_retries:
                break
            delay = min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            pause = min(self.max_backoff, wait) if wait is not None else delay
            left = deadline.current().remaining() if deadline.current() is not None else None  # type: ignore[union-attr]
            if left is not None and pause >= left:
                raise DeadlineExceeded(f"the judge server did not answer in time ({last})")
            await asyncio.sleep(pause)
        tries = self.max_retries + 1
        if answered in SERVER_FAULTS:  # it answered, with a fault of its own: a bad gateway for our clients
            raise UpstreamError(f"the judge server failed {tries} {'time' if tries == 1 else 'times'} ({last})")
        raise BackendUnavailableError(f"server unreachable after {tries} tries ({last})")

    async def _send(self, client: httpx.AsyncClient, url: str, body: dict[str, Any], timeout: float) -> httpx.Response:
        """POST and read the whole answer within ``timeout`` seconds overall (httpx's own
        timeout is per read, which a server that drips bytes never trips), abandoned as soon
        as the current deadline passes or its request is cancelled."""
        import asyncio

        # httpx's own per-read timeout a little earlier than the overall bound, so a server that
        # sends nothing is reported as httpx's ReadTimeout and one that drips as the overall bound
        per_read = max(0.05, timeout * 0.9) if timeout >= self.timeout else timeout
        task = asyncio.ensure_future(asyncio.wait_for(_post_bounded(client, url, body, per_read), timeout))
        limit = deadline.current()
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=0.1)
                if done:
                    return task.result()
                if limit is not None and limit.expired():
                    task.cancel()
                    limit.check()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # it ends here, not in asyncio.run's shutdown
            if not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" in the log

    def _parse(self, response: httpx.Response) -> RawAnswer:
        try:
            payload = json.loads(response.content)
        except (ValueError, RecursionError):
            return RawAnswer(text=_text(response)[:2000])  # broken JSON: re-asked as an invalid answer
        return parse_completion(payload)

    async def _one(self, client: httpx.AsyncClient, sem: asyncio.Semaphore, request: JudgeRequest) -> JudgeResult:
        async with sem:
            collector = AnswerCollector(request, f"openai:{self.model}")
            for seed in collector.seeds():
                collector.offer(await self._post(client, collector.current, seed))
            return collector.result()

    async def _run(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """All requests of a batch (every sample of every attribute of an item) go out
        together, bounded by ``concurrency`` per server."""
        import asyncio

        import httpx

        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency * len(self.base_urls))
        sem = asyncio.Semaphore(self.concurrency * len(self.base_urls))
        async with httpx.AsyncClient(timeout=self.timeout, headers=headers, limits=limits) as client:
            tasks = [asyncio.ensure_future(self._one(client, sem, r)) for r in requests]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                # the first failure ends the batch: the others are stopped and waited for while
                # the loop and the client are still open (not left to asyncio.run's shutdown,
                # which would print their connection errors after the one-line error)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        import asyncio

        if not requests:
            return []
        return asyncio.run(self._run(requests))

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
