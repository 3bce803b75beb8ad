"""``POST /v1/chat/completions`` (OpenAI-compatible) and ``POST /v1/rerank`` (the vLLM /
llama.cpp / Jina / Cohere shape), steered to a person: the target comes from the request's
``pluralign`` object (``target`` or a saved ``profile``) or from the profile stored for
``user`` (learned from ``/v1/feedback``). A target may be a group (:mod:`pluralign.choice.targets`):
candidates then come largest share first, and the ``pluralign`` field carries the shares.

A completion asks the generator for ``--candidates`` answers, judges them with the served
method and returns them closest first. Errors use the OpenAI shape
``{"error": {"message", "type", "code"}}``, with the service's usual statuses.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from pluralign.api import ChooseResult
from pluralign.choice.target_data import profile_from_data
from pluralign.choice.targets import Target
from pluralign.people.profile import ChoiceRecord
from pluralign.prediction.generators import Candidates, Draw
from pluralign.prediction.judges.base import ChatMessage
from pluralign.server.admission import error_payload
from pluralign.server.queue import Ticket
from pluralign.server.routes.feedback import UserName
from pluralign.server.state import ServiceState, chooser, namespace, retry_after, state, status_for
from pluralign.support import strict
from pluralign.support.errors import DeadlineExceeded, PluralignError, UpstreamError, validation_message
from pluralign.support.strict import Seed

router = APIRouter(prefix="/v1", tags=["steer"])
MAX_MESSAGES = 256


class TextPart(BaseModel):
    type: Literal["text"]
    text: StrictStr


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class Steering(BaseModel):
    """Whom to steer to: a target, or a saved profile's name (else the request's user)."""

    model_config = ConfigDict(extra="forbid")

    target: dict[str, Any] | list[Any] | None = None
    profile: StrictStr | None = Field(default=None, min_length=1, max_length=64)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # other OpenAI fields (top_p, stream_options, ...) are not used

    model: StrictStr = ""
    messages: list[Message] = Field(min_length=1, max_length=MAX_MESSAGES)
    n: int = Field(default=1, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    seed: Seed | None = None
    user: UserName | None = None
    stream: bool = False
    pluralign: Steering | None = None


class Document(BaseModel):
    text: StrictStr


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: StrictStr = ""
    query: StrictStr = Field(min_length=1)
    documents: list[StrictStr | Document] = Field(min_length=2)
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = True
    target: dict[str, Any] | list[Any] | None = None
    profile: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    user: UserName | None = None
    pluralign: Steering | None = None


def openai_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_payload(status, message, openai=True), status_code=status, headers=headers)


async def _openai_shaped(work: Callable[[], Any]) -> Response:
    """Run a route's body; every failure comes back in the OpenAI error shape."""
    try:
        result = await work()
    except HTTPException as exc:
        return openai_error(exc.status_code, str(exc.detail))
    except PluralignError as exc:
        return openai_error(status_for(exc), str(exc), retry_after(exc))
    return result if isinstance(result, Response) else JSONResponse(result)


def _parse(model: type[BaseModel], raw: bytes) -> Any:
    try:
        data = strict.loads(raw)
    except (ValueError, RecursionError):
        raise HTTPException(422, "the body is not JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, validation_message(exc)) from None


async def steering_target(
    s: ServiceState, steering: Steering | None, user: str | None, ns: str
) -> tuple[Target, int | None]:
    """The request's target (or group), its saved profile (or group), or the profile stored for
    its user; with the incarnation of the user whose stored profile it is (None otherwise), so
    nothing is kept for a user forgotten meanwhile."""
    from pluralign.server.routes.profile import PROFILE_NAME

    registry = s.config.registry
    if steering is not None and steering.target is not None:
        return s.admission.target(steering.target), None
    if steering is not None and steering.profile is not None:
        folder = s.config.limits.profiles_dir
        if not PROFILE_NAME.fullmatch(steering.profile):
            raise HTTPException(422, "pluralign.profile: use 1-64 letters, digits, _ or -")
        path = folder / f"{steering.profile}.json" if folder is not None else None
        if path is None or not path.is_file():
            raise HTTPException(422, f"pluralign.profile: no saved profile named {steering.profile!r}")
        from pluralign.support.files import read_json

        return s.admission.target(read_json(path, "profile"), steering.profile), None
    if user is not None:
        stored = await asyncio.to_thread(s.users.profile, ns, user)
        if stored is None:
            raise HTTPException(422, "user: no profile is stored for this user yet; send pluralign.target or feedback")
        return profile_from_data(stored.profile["target_file"], "profile", registry), stored.incarnation
    raise HTTPException(422, "no target: send pluralign.target, pluralign.profile, or a user with a stored profile")


def transcript(messages: list[ChatMessage]) -> str:
    """What the judge reads as the question: the user's message, or the conversation so far."""
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1:
        return turns[0].content
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in turns)


async def _candidates(
    s: ServiceState, request: Request, messages: list[ChatMessage], draw: Draw, ticket: Ticket
) -> Candidates:
    generator = s.generator
    if generator is None:
        raise HTTPException(503, "this service has no generator")
    if generator.in_process:  # on the judge's worker: one at a time, under the deadline
        made = await s.queue.run(lambda: generator.generate_sync(messages, draw), request.is_disconnected, ticket)
    else:
        try:
            made = await asyncio.wait_for(generator.generate(messages, draw), s.config.limits.decision_timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the generator ran past the deadline of {s.config.limits.decision_timeout:g} s"
            ) from None
    longest = max(len(t) for t in made.texts)
    if longest > s.config.limits.max_text_chars:  # the generator's fault, not the client's
        raise UpstreamError(
            f"the generator wrote a candidate of {longest} characters, over this service's limit of "
            f"{s.config.limits.max_text_chars} (--max-text-chars); lower max_tokens"
        )
    return made


def _ranked(result: ChooseResult, n: int) -> list[int]:
    """The ``n`` indexes closest first (for a group: the largest share first, then the closest on
    average; a method that only picks, with no distances: the rest in their order), the selected
    response (the tie rule's pick) at the top."""
    shares = result.shares

    def key(i: int) -> tuple[float, float]:
        distance = result.distances[i] if i < len(result.distances) else 0.0
        return (-shares[i] if shares is not None else 0.0, distance)

    rest = sorted((i for i in range(n) if i != result.selected_index), key=key)
    return [result.selected_index, *rest]


def _steer_field(result: ChooseResult, texts: list[str], order: list[int]) -> dict[str, Any]:
    explanation = result.explanation.sentence if result.explanation is not None else result.reasoning
    return {
        "selected_index": result.selected_index,
        "explanation": explanation,
        "confidence": result.confidence,
        "target": result.target,
        "method": result.method,
        **({"group": result.group, "members": result.members, "shares": result.shares} if result.shares else {}),
        "candidates": [
            {
                "index": i,
                "rank": order.index(i),
                "content": t,
                "distance": result.distances[i] if result.distances else None,
                "predictions": result.predictions[i] if result.predictions else None,
            }
            for i, t in enumerate(texts)
        ],
    }


async def _complete(body: ChatRequest, request: Request, s: ServiceState, ns: str) -> Response | dict[str, Any]:
    chooser(request)  # 503 while the method loads, before anything else
    options = s.config.generator
    if body.n > options.candidates:
        raise HTTPException(422, f"n: at most {options.candidates} (the candidates this service draws), got {body.n}")
    messages = [
        ChatMessage(role="system" if m.role == "developer" else m.role, content=m.text()) for m in body.messages
    ]
    if not any(m.role == "user" and m.content.strip() for m in messages):
        raise HTTPException(422, "messages: no user message with text")
    question = transcript(messages)
    s.admission.probe(question, ["", ""])
    target, incarnation = await steering_target(s, body.pluralign, body.user, ns)
    with s.queue.ticket() as ticket:  # a full queue refuses before any candidate is paid for
        return await _steered(body, request, s, ns, messages, question, target, incarnation, ticket)


async def _steered(
    body: ChatRequest,
    request: Request,
    s: ServiceState,
    ns: str,
    messages: list[ChatMessage],
    question: str,
    target: Target,
    incarnation: int | None,
    ticket: Ticket,
) -> Response | dict[str, Any]:
    c = chooser(request)
    options = s.config.generator
    draw = Draw(
        k=options.candidates,
        temperature=body.temperature if body.temperature is not None else options.generator_temperature,
        max_tokens=body.max_tokens or options.generator_max_tokens,
        seed=body.seed or 0,
    )
    started = time.perf_counter()
    made = await _candidates(s, request, messages, draw, ticket)
    generated = time.perf_counter()
    texts = made.texts
    result = await s.queue.run(
        lambda: c.choose(question, texts, target, seed=draw.seed), request.is_disconnected, ticket
    )
    seconds = {"generation": round(generated - started, 3), "judging": round(time.perf_counter() - generated, 3)}
    order = _ranked(result, len(texts))
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    record = ChoiceRecord(id=completion_id, question=question, responses=texts, predictions=result.predictions)
    await asyncio.to_thread(s.users.add_completion, ns, completion_id, body.user, record, incarnation)
    prompt_tokens = made.usage.prompt_tokens + result.prompt_tokens
    completion_tokens = made.usage.completion_tokens + result.completion_tokens
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    head = {"id": completion_id, "created": int(time.time()), "model": body.model or made.model}
    steer = {**_steer_field(result, texts, order), "seconds": seconds}
    shown = order[: body.n]
    if body.stream:
        return StreamingResponse(
            _chunks(head, [(texts[i], made.finish_reason(i)) for i in shown], usage, steer),
            media_type="text/event-stream",
        )
    choices = [
        {
            "index": rank,
            "message": {"role": "assistant", "content": texts[i]},
            "finish_reason": made.finish_reason(i),
            "logprobs": None,
        }
        for rank, i in enumerate(shown)
    ]
    return {**head, "object": "chat.completion", "choices": choices, "usage": usage, "pluralign": steer}


async def _chunks(
    head: dict[str, Any], texts: list[tuple[str, str]], usage: dict[str, int], steer: dict[str, Any]
) -> AsyncIterator[str]:
    """The chosen responses as server-sent events in the OpenAI chunk format, after selection."""

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'object': 'chat.completion.chunk', 'choices': choices, **extra})}\n\n"

    for rank, (text, reason) in enumerate(texts):
        yield event([{"index": rank, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        yield event([{"index": rank, "delta": {"content": text}, "finish_reason": None}])
        yield event([{"index": rank, "delta": {}, "finish_reason": reason}])
    yield event([], usage=usage, pluralign=steer)
    yield "data: [DONE]\n\n"


@router.post("/chat/completions")
async def chat_completions(
    request: Request, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Response:
    """An OpenAI chat completion whose choices are candidates closest to the person's target first."""

    async def work() -> Any:
        return await _complete(_parse(ChatRequest, await request.body()), request, s, ns)

    return await _openai_shaped(work)


def relevance(distance: float, result: ChooseResult) -> float:
    """1 at the target, 0 at the farthest point of the unit cube (higher is better): the distance
    over the largest one possible, sqrt(sum of the weights) under the weighted metric, sqrt(number
    of attributes) without weights."""
    weights = result.weights or {}
    farthest = math.sqrt(sum(weights.get(a, 1.0) for a in result.target)) if weights else len(result.target) ** 0.5
    return max(0.0, 1.0 - distance / max(farthest, 1e-12))


async def _rerank(body: RerankRequest, request: Request, s: ServiceState, ns: str) -> dict[str, Any]:
    c = chooser(request)
    given = [where for where, v in (("target", body.target), ("profile", body.profile)) if v is not None]
    if body.pluralign is not None and given:
        raise HTTPException(422, f"{given[0]}: send it at the top level or inside pluralign, not both")
    steering = body.pluralign or Steering(target=body.target, profile=body.profile)
    texts = [d if isinstance(d, str) else d.text for d in body.documents]
    s.admission.probe(body.query, texts)
    target, _ = await steering_target(s, steering, body.user, ns)
    result = await s.queue.run(lambda: c.choose(body.query, texts, target), request.is_disconnected)
    order = _ranked(result, len(texts))[: body.top_n or len(texts)]
    results = []
    for i in order:
        if result.shares is not None:
            score = result.shares[i]
        elif result.distances:
            score = relevance(result.distances[i], result)
        else:  # a method that only picks: the pick first
            score = 1.0 if i == result.selected_index else 0.0
        row: dict[str, Any] = {"index": i, "relevance_score": score}
        if body.return_documents:
            row["document"] = {"text": texts[i]}
        results.append(row)
    tokens = result.prompt_tokens + result.completion_tokens
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "model": body.model or result.method,
        "results": results,
        "usage": {"total_tokens": tokens},
        "pluralign": {
            "target": result.target,
            "method": result.method,
            **({"group": result.group, "members": result.members, "shares": result.shares} if result.shares else {}),
        },
    }


@router.post("/rerank")
async def rerank(request: Request, s: ServiceState = Depends(state), ns: str = Depends(namespace)) -> Response:
    """Documents best first for the person; relevance_score = 1 - distance / the largest distance
    possible (for a group: the share of the group that would choose the document)."""

    async def work() -> Any:
        return await _rerank(_parse(RerankRequest, await request.body()), request, s, ns)

    return await _openai_shaped(work)
