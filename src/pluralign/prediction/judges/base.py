"""The judge protocol: chat messages + a JSON schema in, schema-valid JSON objects out.

Backends differ only in how they produce text; validation, re-asking and call logging
are shared here so every backend fails the same, clear way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

import pluralign.prediction.judges.calllog as calllog
from pluralign.support import deadline, strict
from pluralign.support.errors import InvalidOutputError
from pluralign.support.options import Options, cli

log = logging.getLogger("pluralign.prediction.judges")


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class GenerationSettings(BaseModel):
    """Sampling settings; ``n`` answers are drawn per request with seeds seed, seed+1, ...

    ``max_attempts`` says how often an invalid answer is re-asked; it does not change a
    valid answer, so the judgement cache leaves it out of its key (:meth:`answer_key`).
    """

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=512, ge=1)
    seed: int = 0
    n: int = Field(default=1, ge=1)
    top_logprobs: int = Field(default=0, ge=0, le=20)
    max_attempts: int = Field(default=3, ge=1)

    def answer_key(self) -> dict[str, Any]:
        """The settings that can change an answer (for cache keys)."""
        return self.model_dump(exclude={"max_attempts"})


class AnswerOptions(Options):
    """How hard the judge is pressed for a valid answer."""

    max_attempts: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Tries per answer before giving up on valid JSON.",
        json_schema_extra=cli(group="generation"),
    )


class JudgeRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    messages: list[ChatMessage]
    json_schema: dict[str, Any]
    settings: GenerationSettings = GenerationSettings()


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


TokenLogprobs = list[dict[str, float]]
"""Per generated token: candidate token text -> log-probability (the top-k)."""


class JudgeResult(BaseModel):
    """``n`` parsed answers with their raw text, the usage and time behind them."""

    outputs: list[dict[str, Any]]
    raw: list[str]
    usage: Usage = Usage()
    seconds: float = 0.0
    attempts: int = 1
    tokens: list[list[str]] | None = None
    logprobs: list[TokenLogprobs] | None = None
    cached: bool = False

    @property
    def data(self) -> dict[str, Any]:
        return self.outputs[0]


@runtime_checkable
class Backend(Protocol):
    """What methods need from an LLM. One file per implementation in this package."""

    name: str
    model: str
    concurrent_requests: int
    """Requests it answers at once (1 in process; a server judge: ``concurrency`` x servers)."""

    def generate(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]: ...

    async def ready(self) -> str | None:
        """None when the backend can answer now; else why not, in a line (a server judge:
        whether its servers answer; an in-process one is ready once loaded)."""
        ...

    def close(self) -> None: ...


class LocalBackend:
    """What a backend that answers in this process (or from files) says of itself: one request
    at a time, and ready once it is loaded."""

    concurrent_requests = 1

    async def ready(self) -> str | None:
        return None


class RawAnswer(BaseModel):
    """One completion as a backend sees it, before validation."""

    text: str
    usage: Usage = Usage()
    tokens: list[str] | None = None
    logprobs: TokenLogprobs | None = None
    finish_reason: str = "stop"


def parse_answer(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON (no raw control characters in strings) that obeys the schema."""
    try:
        data = strict.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, nesting too deep
        raise ValueError(f"not usable JSON ({' '.join(str(exc).split())[:100]})") from None
    problem = strict.schema_problem(data, schema)
    if problem is not None:
        raise ValueError(problem)
    if not isinstance(data, dict):
        raise ValueError("answer is not a JSON object")
    return data


RETRY_TEMPERATURE = 0.7


class AnswerCollector:
    """Bookkeeping for drawing ``n`` schema-valid answers with re-asks.

    Backends loop ``for seed in collector.seeds(): collector.offer(<answer to
    collector.current with seed>)``, synchronously or with ``await``; every attempt's raw
    text is logged, and running out of attempts raises an error that says how many tries
    were made. A re-ask at temperature 0 would repeat the failed answer word for word, so
    re-asks of a greedy request sample at ``RETRY_TEMPERATURE`` (seeded, so reproducible).
    """

    def __init__(self, request: JudgeRequest, backend_name: str) -> None:
        self.request = request
        self.backend_name = backend_name
        self.started = time.perf_counter()
        self.outputs: list[dict[str, Any]] = []
        self.raws: list[str] = []
        self.tokens: list[list[str]] = []
        self.logprobs: list[TokenLogprobs] = []
        self.usage = Usage()
        self.attempts = 0
        self._accepted = False
        self._last_error = ""
        self._retrying = False
        self._retry_request = request
        if request.settings.temperature == 0:
            settings = request.settings.model_copy(update={"temperature": RETRY_TEMPERATURE})
            self._retry_request = request.model_copy(update={"settings": settings})

    @property
    def current(self) -> JudgeRequest:
        """The request to send for the attempt that ``seeds`` has just yielded."""
        return self._retry_request if self._retrying else self.request

    def seeds(self) -> Iterator[int]:
        settings = self.request.settings
        for k in range(settings.n):
            self._accepted = False
            for attempt in range(settings.max_attempts):
                deadline.check()
                self.attempts += 1
                self._retrying = attempt > 0
                yield settings.seed + k + 1000 * attempt
                if self._accepted:
                    break
            else:
                raise InvalidOutputError(
                    f"{self.backend_name}: no answer valid for the schema after {settings.max_attempts} "
                    f"tries (last: {self._last_error}); raw answers are in the log"
                )

    def offer(self, answer: RawAnswer) -> None:
        self.usage = self.usage + answer.usage
        deadline.check()  # an answer cut short by a deadline is not worth re-asking
        try:
            parsed = parse_answer(answer.text, self.request.json_schema)
        except ValueError as exc:
            self._last_error = str(exc)
            log.info("%s: invalid answer: %s; raw: %r", self.backend_name, exc, answer.text)
            _log_call(self.request, answer.text, None, self.backend_name, self._last_error)
            return
        _log_call(self.request, answer.text, parsed, self.backend_name, None)
        self._accepted = True
        self.outputs.append(parsed)
        self.raws.append(answer.text)
        if answer.tokens is not None and answer.logprobs is not None:
            self.tokens.append(answer.tokens)
            self.logprobs.append(answer.logprobs)

    def result(self) -> JudgeResult:
        return JudgeResult(
            outputs=self.outputs,
            raw=self.raws,
            usage=self.usage,
            seconds=time.perf_counter() - self.started,
            attempts=self.attempts,
            tokens=self.tokens or None,
            logprobs=self.logprobs or None,
        )


def generate_valid(
    request: JudgeRequest,
    complete: Callable[[JudgeRequest, int], RawAnswer],
    backend_name: str,
) -> JudgeResult:
    """Synchronous driver of :class:`AnswerCollector`."""
    collector = AnswerCollector(request, backend_name)
    for seed in collector.seeds():
        collector.offer(complete(collector.current, seed))
    return collector.result()


def _log_call(request: JudgeRequest, raw: str, parsed: Any, backend: str, error: str | None) -> None:
    if calllog.active():
        calllog.record(
            {
                "backend": backend,
                "messages": [m.model_dump() for m in request.messages],
                "raw": raw,
                "parsed": parsed,
                "error": error,
            }
        )
