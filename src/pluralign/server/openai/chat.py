"""``POST /v1/chat/completions``: an OpenAI chat completion whose choices are a generator's
candidates, closest to the person's target first; ``GET /v1/chat/completions/{id}`` gives a
stored one back (OpenAI's stored-completions convention), with its ``pluralign`` field, to an app
whose framework dropped it.

Every request field has a rule (:data:`~pluralign.server.openai.protocol.PARAMETER_RULES`): the
sampling settings go to the generator, ``response_format`` also filters the candidates (only
those that satisfy it are judged), identical candidates are judged once, and what a steered
completion cannot honour (tools) is refused naming the field. A place in the queue is taken
before any candidate is drawn. A stream sends keep-alive comments while candidates are drawn and
judged, then the chosen answers as OpenAI chunks, the completion's id in every one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pluralign.api import ChooseResult
from pluralign.choice.targets import Target, target_values
from pluralign.people.profile import ChoiceRecord
from pluralign.prediction.generators import Candidates, Draw
from pluralign.prediction.judges.base import ChatMessage
from pluralign.server.openai.errors import documented, error_of, shaped
from pluralign.server.openai.protocol import (
    REFUSED,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    ResponseMessage,
    SteeredCandidate,
    SteerInfo,
    Usage,
)
from pluralign.server.openai.steering import judging_overrides, steering_target, transcript
from pluralign.server.queue import Ticket
from pluralign.server.routes.feedback import check_user
from pluralign.server.state import ServiceState, chooser, namespace, state
from pluralign.support import strict
from pluralign.support.errors import DeadlineExceeded, PluralignError, UnsupportedParameter, UpstreamError

router = APIRouter(tags=["openai"])
ERRORS = documented(400, 401, 404, 409, 413, 415, 502, 503, 504)


def _refuse_what_cannot_be_steered(body: ChatCompletionRequest) -> None:
    for name, why in REFUSED.items():
        value = getattr(body, name)
        if value is not None and value != []:
            raise UnsupportedParameter(name, why)
    for i, message in enumerate(body.messages):  # once accepted and dropped on the way to the generator
        if message.name is not None:
            raise UnsupportedParameter(
                f"messages[{i}].name", "a participant's name is not passed on; put it in content"
            )


def draw_of(body: ChatCompletionRequest, s: ServiceState) -> Draw:
    """How the generator draws this request's candidates: its sampling settings, else the service's.
    At temperature 0 the candidates would be one answer k times: one is drawn."""
    options = s.config.generator
    temperature = body.temperature if body.temperature is not None else options.generator_temperature
    return Draw(
        k=1 if temperature == 0 else options.candidates,
        temperature=temperature,
        max_tokens=body.token_budget() or options.generator_max_tokens,
        seed=body.seed or 0,
        top_p=body.top_p,
        stop=body.stops(),
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logit_bias=body.logit_bias,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs,
        response_format=body.response_format.model_dump(exclude_none=True) if body.response_format else None,
    )


async def _candidates(
    s: ServiceState, request: Request, messages: list[ChatMessage], draw: Draw, ticket: Ticket
) -> Candidates:
    generator = s.generator
    if generator is None:
        raise HTTPException(503, "this service has no generator")
    if generator.in_process:  # on the judge's worker: one at a time, under the deadline

        def draw_now() -> Candidates:
            return generator.generate_sync(messages, draw)

        made = await s.queue.run(draw_now, request.is_disconnected, ticket, stage="generation")
    else:
        started = time.perf_counter()
        try:
            made = await asyncio.wait_for(generator.generate(messages, draw), s.config.limits.decision_timeout)
        except TimeoutError:
            raise DeadlineExceeded(
                f"the generator ran past the deadline of {s.config.limits.decision_timeout:g} s"
            ) from None
        s.telemetry.work("generation", time.perf_counter() - started, made)
    longest = max((len(t) for t in made.texts), default=0)
    if longest > s.config.limits.max_text_chars:  # the generator's fault, not the client's
        raise UpstreamError(
            f"the generator wrote a candidate of {longest} characters, over this service's limit of "
            f"{s.config.limits.max_text_chars} (--max-text-chars); lower max_tokens"
        )
    return made


def satisfies(text: str, response_format: dict[str, Any] | None) -> bool:
    """Whether a candidate is what ``response_format`` asks for (text always is)."""
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return True
    try:
        value = json.loads(text)
    except ValueError:
        return False
    if kind == "json_object":
        return isinstance(value, dict)
    schema = ((response_format or {}).get("json_schema") or {}).get("schema")
    if not isinstance(schema, dict):
        return isinstance(value, dict)
    return strict.schema_problem(value, schema) is None


def distinct(made: Candidates, response_format: dict[str, Any] | None) -> list[int]:
    """The candidates worth judging: the first of each distinct text that satisfies the format."""
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(made.texts):
        if text.strip() and text not in seen and satisfies(text, response_format):
            seen.add(text)
            keep.append(i)
    if not keep:
        wanted = f" that satisfies response_format {response_format.get('type')}" if response_format else ""
        raise UpstreamError(f"the generator wrote no usable candidate{wanted}")
    return keep


def ranked(result: ChooseResult | None, n: int) -> list[int]:
    """Positions closest first (a group: the largest share first, then the closest on average; a
    method that only picks: the rest in their order), the selected one (the tie rule's pick) first."""
    if result is None:
        return list(range(n))
    shares = result.shares

    def key(i: int) -> tuple[float, float]:
        distance = result.distances[i] if i < len(result.distances) else 0.0
        return (-shares[i] if shares is not None else 0.0, distance)

    rest = sorted((i for i in range(n) if i != result.selected_index), key=key)
    return [result.selected_index, *rest]


def steer_info(
    result: ChooseResult | None,
    texts: list[str],
    made: Candidates,
    keep: list[int],
    order: list[int],
    target: Target,
) -> SteerInfo:
    if result is None:  # one distinct candidate: nothing to choose between
        return SteerInfo(
            selected_index=0,
            explanation="The generator wrote one distinct answer; there was nothing to choose between.",
            target=target_values(target),
            method="",
            candidates=[SteeredCandidate(index=0, rank=0, content=texts[0], finish_reason=made.finish_reason(keep[0]))],
            order=order,
        )
    explanation = result.explanation.sentence if result.explanation is not None else result.reasoning
    grouped = result.shares is not None
    return SteerInfo(
        selected_index=result.selected_index,
        explanation=explanation,
        confidence=result.confidence,
        target=result.target,
        method=result.method,
        group=result.group if grouped else None,
        members=result.members if grouped else None,
        shares=result.shares,
        candidates=[
            SteeredCandidate(
                index=i,
                rank=order.index(i),
                content=t,
                distance=result.distances[i] if result.distances else None,
                predictions=result.predictions[i] if result.predictions else None,
                finish_reason=made.finish_reason(keep[i]),
            )
            for i, t in enumerate(texts)
        ],
        order=order,
    )


async def _steered(
    body: ChatCompletionRequest, request: Request, s: ServiceState, ns: str, ticket: Ticket
) -> ChatCompletion:
    """Draw, filter and judge the candidates, rank them, store the completion."""
    c = chooser(request)
    messages = [
        ChatMessage(role="system" if m.role == "developer" else m.role, content=m.text()) for m in body.messages
    ]
    question = transcript(messages)
    target, incarnation = await steering_target(s, body.pluralign, body.model, body.user, ns)
    draw = draw_of(body, s)
    started = time.perf_counter()
    made = await _candidates(s, request, messages, draw, ticket)
    generated = time.perf_counter()
    keep = distinct(made, draw.response_format)
    texts = [made.texts[i] for i in keep]
    result = None
    if len(texts) > 1:
        quicker = judging_overrides(s)
        result = await s.queue.run(
            lambda: c.choose(question, texts, target, seed=draw.seed, overrides=quicker),
            request.is_disconnected,
            ticket,
        )
    order = ranked(result, len(texts))
    info = steer_info(result, texts, made, keep, order, target)
    info.seconds = {"generation": round(generated - started, 3), "judging": round(time.perf_counter() - generated, 3)}
    prompt = made.usage.prompt_tokens + (result.prompt_tokens if result else 0)
    written = made.usage.completion_tokens + (result.completion_tokens if result else 0)
    completion = ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=body.model or made.model,
        choices=[
            ChatChoice(
                index=rank,
                message=ResponseMessage(content=texts[i]),
                finish_reason=made.finish_reason(keep[i]),
                logprobs=ChoiceLogprobs.model_validate(made.logprobs_of(keep[i]))
                if made.logprobs_of(keep[i])
                else None,
            )
            for rank, i in enumerate(order[: body.n])
        ],
        usage=Usage(prompt_tokens=prompt, completion_tokens=written, total_tokens=prompt + written),
        pluralign=info,
    )
    record = (
        ChoiceRecord(id=completion.id, question=question, responses=texts, predictions=result.predictions)
        if result is not None
        else None
    )
    stored = completion.model_dump_json()  # for GET by id, and feedback by a choice's position
    add = s.users.add_completion
    await asyncio.to_thread(
        add, ns, completion.id, body.user, record, incarnation, stored, completion.model, body.metadata
    )
    return completion


def _checked(body: ChatCompletionRequest, s: ServiceState) -> None:
    """What can be refused before anything is drawn."""
    _refuse_what_cannot_be_steered(body)
    if body.user is not None:
        try:
            check_user(body.user)
        except ValueError as exc:
            raise HTTPException(422, f"user: {exc}") from None
    if body.n > s.config.generator.candidates:
        raise HTTPException(
            422, f"n: at most {s.config.generator.candidates} (the candidates this service draws), got {body.n}"
        )
    if not any(m.role == "user" and m.text().strip() for m in body.messages):
        raise HTTPException(422, "messages: no user message with text")
    s.admission.probe(
        transcript([ChatMessage(role="user", content=m.text()) for m in body.messages]), ["", ""], "messages"
    )


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=ERRORS)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Response:
    """An OpenAI chat completion whose choices are candidates closest to the person's target first
    (``stream: true``: server-sent events, keep-alive comments until the answer is chosen)."""

    async def work() -> Response:
        chooser(request)  # 503 while the method loads, before anything else
        _checked(body, s)
        if body.stream:
            return await _stream(body, request, s, ns)
        with s.queue.ticket() as ticket:  # a full queue refuses before any candidate is paid for
            completion = await _steered(body, request, s, ns, ticket)
        return JSONResponse(completion.model_dump())

    return await shaped(work)


async def _stream(body: ChatCompletionRequest, request: Request, s: ServiceState, ns: str) -> StreamingResponse:
    stack = ExitStack()
    ticket = stack.enter_context(s.queue.ticket())  # refused (503) here, before the stream starts
    task = asyncio.ensure_future(_steered(body, request, s, ns, ticket))
    every = s.config.limits.stream_keepalive

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=every)
                if done:
                    break
                yield ": keep-alive\n\n"
            try:
                completion = task.result()
            except (PluralignError, HTTPException) as exc:
                yield f"data: {bytes(error_of(exc).body).decode()}\n\n"
                yield "data: [DONE]\n\n"
                return
            for chunk in chunks(completion, bool(body.stream_options and body.stream_options.include_usage)):
                yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
            yield "data: [DONE]\n\n"
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            stack.close()

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def chunks(completion: ChatCompletion, include_usage: bool) -> list[ChatCompletionChunk]:
    """The completion as OpenAI chunks: per choice its role, its text and its finish reason; the
    ``pluralign`` field rides on the last chunk that has choices; the usage chunk (with no choices)
    only when asked for, as OpenAI sends it."""

    def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=completion.id, created=completion.created, model=completion.model, choices=choices, usage=usage
        )

    out: list[ChatCompletionChunk] = []
    for choice in completion.choices:
        i = choice.index
        out.append(chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content=""))]))
        out.append(chunk([ChunkChoice(index=i, delta=Delta(content=choice.message.content), logprobs=choice.logprobs)]))
        out.append(chunk([ChunkChoice(index=i, delta=Delta(), finish_reason=choice.finish_reason)]))
    out[-1].pluralign = completion.pluralign
    if include_usage:
        out.append(chunk([], completion.usage))
    return out
