"""The OpenAI-compatible protocol as pydantic models (as vLLM's ``entrypoints/openai/*/protocol.py``
does): requests, responses, stream chunks, rerank and one error shape, all in ``/openapi.json``.

Every field of the chat request has a rule (:data:`PARAMETER_RULES`, the table in the docs):
passed to the generator, applied by the steering, or refused with a 400 that names it in
``param``. A field the protocol does not have is refused the same way: nothing is dropped
without a word.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from pluralign.choice.probes import Question
from pluralign.support import strict
from pluralign.support.strict import Seed

MAX_MESSAGES = 256
MAX_STOP = 4


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every failure of the OpenAI-compatible routes: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


class RequestMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[TextPart] | None = None
    name: StrictStr | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class Steering(BaseModel):
    """Whom to steer to: a target (a person's or a group's), or a saved profile's name (else the
    request's ``model`` when it names one, ``pluralign/NAME``, the stored profile of ``user``, or
    the service's ``--default-target``)."""

    model_config = ConfigDict(extra="forbid")

    target: dict[str, Any] | list[Any] | None = None
    profile: StrictStr | None = Field(default=None, min_length=1, max_length=64)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @field_validator("json_schema")
    @classmethod
    def _a_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        """A schema the candidates are checked against must be one: refused before any is drawn."""
        if value is not None and "schema" in value:
            problem = strict.schema_error(value["schema"])
            if problem is not None:
                raise ValueError(f"json_schema.schema is {problem}")
        return value


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat request. Fields not listed here are refused (400 naming them)."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr = ""
    messages: list[RequestMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    n: int = Field(default=1, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32_768)
    stop: StrictStr | list[StrictStr] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    seed: Seed | None = None
    user: StrictStr | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    store: bool | None = None
    metadata: dict[str, Annotated[StrictStr, Field(max_length=512)]] | None = Field(default=None, max_length=16)
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    pluralign: Steering | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} sequences, got {len(stop)}")
        if "" in ([stop] if isinstance(stop, str) else stop or []):  # llama.cpp then answers nothing at all
            raise ValueError("an empty sequence would end every candidate before its first word")
        return stop

    def token_budget(self) -> int | None:
        """``max_completion_tokens`` (what LangChain and newer clients send), else ``max_tokens``."""
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


REFUSED = {
    "tools": "tool calls cannot be steered: the candidates are judged as text",
    "tool_choice": "tool calls cannot be steered: the candidates are judged as text",
    "parallel_tool_calls": "tool calls cannot be steered: the candidates are judged as text",
    "functions": "function calls cannot be steered: the candidates are judged as text",
    "function_call": "function calls cannot be steered: the candidates are judged as text",
}
"""Fields a steered completion cannot honour: a 400 naming the field, when the request sets them."""

PARAMETER_RULES: dict[str, str] = {
    "model": "echoed; `pluralign/NAME` steers to the saved profile NAME",
    "messages": "passed to the generator; the judge reads the conversation as the question (a message's "
    "`name` is refused)",
    "n": "applied: the n candidates closest to the target, at most --candidates",
    "temperature": "passed to the generator (default --generator-temperature); 0 draws one candidate, judged once",
    "top_p": "passed to the generator",
    "max_tokens": "passed to the generator",
    "max_completion_tokens": "passed to the generator (wins over max_tokens)",
    "stop": "passed to the generator (at most 4)",
    "presence_penalty": "passed to the generator (server generators only; refused by the local one)",
    "frequency_penalty": "passed to the generator (server generators only; refused by the local one)",
    "logit_bias": "passed to the generator (server generators only; refused by the local one)",
    "logprobs": "passed to the generator; the chosen candidates' own (server generators only)",
    "top_logprobs": "passed to the generator with logprobs",
    "response_format": "passed to the generator and applied: only candidates that satisfy it are judged",
    "seed": "passed to the generator: candidate k draws with seed + k",
    "user": "applied: the person whose stored profile steers, and whose feedback it learns from",
    "stream": "applied: keep-alive comments while candidates are drawn and judged, then the chosen ones",
    "stream_options": "applied: include_usage adds the usage chunk",
    "store": "applied: every completion is kept (--completion-ttl) for feedback and GET /v1/chat/completions",
    "metadata": "stored with the completion: GET /v1/chat/completions?metadata[key]=value lists by it",
    **{name: f"refused (400): {why}" for name, why in REFUSED.items()},
    "pluralign": "applied: the target, or a saved profile's name",
}
"""What the steering does with each field of the chat request (docs/http-api.md shows this table)."""


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = []


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprob] | None = None


class ChatChoice(BaseModel):
    index: int
    message: ResponseMessage
    finish_reason: str
    logprobs: ChoiceLogprobs | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class SteeredCandidate(BaseModel):
    index: int
    rank: int
    content: str
    distance: float | None = None
    predictions: dict[str, float] | None = None
    finish_reason: str = "stop"


class SteerInfo(BaseModel):
    """How the choices were chosen: the steering's own field of a completion."""

    selected_index: int
    explanation: str
    confidence: float | None = None
    target: dict[str, float]
    method: str
    group: str | None = None
    members: int | None = None
    shares: list[float] | None = None
    candidates: list[SteeredCandidate]
    order: list[int] = []
    """Candidate indexes in the order of ``choices``: feedback may name a choice by its position."""
    seconds: dict[str, float] = {}


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    pluralign: SteerInfo


class ChatCompletionList(BaseModel):
    """Stored completions, as OpenAI lists them (``GET /v1/chat/completions``)."""

    object: Literal["list"] = "list"
    data: list[ChatCompletion]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    pluralign: SteerInfo | None = None


class Document(BaseModel):
    """A document as an object (Cohere v1): its ``text`` and any other fields, which
    ``rank_fields`` may name and the answer gives back as sent."""

    model_config = ConfigDict(extra="allow")

    text: StrictStr


class RerankRequest(BaseModel):
    """The vLLM / Jina / Cohere (v1 and v2) rerank request, steered by ``target``, ``profile``,
    ``user``, ``pluralign`` or a ``model`` that names a saved profile (``pluralign/NAME``)."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr = ""
    query: Question
    documents: list[StrictStr | Document] = Field(min_length=2)
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool | None = None
    """Each result's text: by default at /rerank and /v1/rerank (vLLM, Jina), not at /v2/rerank (Cohere v2)."""
    max_tokens_per_doc: int | None = None
    rank_fields: list[StrictStr] | None = Field(default=None, min_length=1, max_length=16)
    max_chunks_per_doc: int | None = None
    target: dict[str, Any] | list[Any] | None = None
    profile: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    user: StrictStr | None = None
    pluralign: Steering | None = None


class RerankDocument(BaseModel):
    """A result's document: the text, or the object as it was sent."""

    model_config = ConfigDict(extra="allow")

    text: str


RERANK_REFUSED = {
    "max_tokens_per_doc": "documents are judged whole, never cut short (one over --max-text-chars is refused)",
    "max_chunks_per_doc": "documents are judged whole, never cut into chunks",
}
"""Fields of the rerank request pluralign cannot honour: a 400 naming the field, when set."""

RERANK_RULES: dict[str, str] = {
    "model": "echoed; `pluralign/NAME` steers to the saved profile NAME",
    "query": "applied: the question the documents answer (never blank)",
    "documents": "applied: strings, or objects with `text` (at most --max-documents)",
    "top_n": "applied: the first n results",
    "return_documents": "applied: each result's document as sent (default: yes, no at /v2/rerank)",
    "max_tokens_per_doc": f"refused (400): {RERANK_REFUSED['max_tokens_per_doc']}",
    "rank_fields": "applied: the judge reads these fields of each document object, as `field: value` lines "
    "(default `text`)",
    "max_chunks_per_doc": f"refused (400): {RERANK_REFUSED['max_chunks_per_doc']}",
    "target": "applied: the target (a person's or a group's)",
    "profile": "applied: a saved profile's name",
    "user": "applied: the person whose stored profile steers",
    "pluralign": "applied: the target, or a saved profile's name",
}
"""What rerank does with each field of its request (docs/http-api.md shows this table)."""


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: RerankDocument | None = None


class RerankUsage(BaseModel):
    total_tokens: int


class RerankSteering(BaseModel):
    target: dict[str, float]
    method: str
    group: str | None = None
    members: int | None = None
    shares: list[float] | None = None


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    usage: RerankUsage
    meta: dict[str, Any] = {}
    pluralign: RerankSteering


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "pluralign"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
