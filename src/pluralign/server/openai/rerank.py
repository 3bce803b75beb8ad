"""Rerank, where clients look for it: ``/rerank`` and ``/v1/rerank`` (vLLM, Jina, Cohere v1) and
``/v2/rerank`` (Cohere v2): documents best first for the person. ``relevance_score`` is
``1 - distance / the largest distance possible`` (for a group: the share of the group that would
choose the document). The target comes as in chat (``target``, ``profile``, ``pluralign``,
``user``, or a ``model`` that names a saved profile, ``pluralign/NAME``, which is how
``cohere.ClientV2`` and ``litellm.rerank`` steer without extra fields)."""

from __future__ import annotations

import math
import uuid

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from pluralign.api import ChooseResult
from pluralign.server.openai.errors import documented, shaped
from pluralign.server.openai.protocol import (
    RERANK_REFUSED,
    Document,
    RerankDocument,
    RerankRequest,
    RerankResponse,
    RerankResult,
    RerankSteering,
    RerankUsage,
    Steering,
)
from pluralign.server.openai.steering import judging_overrides, steering_target
from pluralign.server.routes.feedback import check_user
from pluralign.server.state import ServiceState, chooser, namespace, state
from pluralign.support.errors import UnsupportedParameter

router = APIRouter(tags=["openai"])
ERRORS = documented(400, 401, 413, 415, 502, 503, 504)


def relevance(distance: float, result: ChooseResult) -> float:
    """1 at the target, 0 at the farthest point of the unit cube (higher is better): the distance
    over the largest one possible, sqrt(sum of the weights) under the weighted metric, sqrt(number
    of attributes) without weights."""
    weights = result.weights or {}
    farthest = math.sqrt(sum(weights.get(a, 1.0) for a in result.target)) if weights else len(result.target) ** 0.5
    return max(0.0, 1.0 - distance / max(farthest, 1e-12))


def _score(result: ChooseResult, i: int) -> float:
    if result.shares is not None:
        return result.shares[i]
    if result.distances:
        return relevance(result.distances[i], result)
    return 1.0 if i == result.selected_index else 0.0  # a method that only picks: the pick first


def document_texts(body: RerankRequest) -> list[str]:
    """What the judge reads of each document: its text, or the ``rank_fields`` of an object as
    ``field: value`` lines, in their order. A field the request cannot be honoured without is
    refused, never dropped."""
    for name, why in RERANK_REFUSED.items():
        if getattr(body, name) is not None:
            raise UnsupportedParameter(name, why)
    fields = body.rank_fields or ["text"]
    twice = next((f for i, f in enumerate(fields) if f in fields[:i]), None)
    if twice is not None:
        raise HTTPException(422, f"rank_fields: {twice!r} is named twice")
    texts = []
    for i, document in enumerate(body.documents):
        values = {"text": document} if isinstance(document, str) else document.model_dump()
        missing = next((f for f in fields if not isinstance(values.get(f), str)), None)
        if missing is not None:
            raise HTTPException(422, f"documents[{i}]: no text field {missing!r} (rank_fields names what is judged)")
        texts.append(values["text"] if fields == ["text"] else "\n".join(f"{f}: {values[f]}" for f in fields))
    return texts


def _as_sent(document: str | Document) -> RerankDocument:
    return RerankDocument.model_validate({"text": document} if isinstance(document, str) else document.model_dump())


async def _rerank(
    body: RerankRequest, request: Request, s: ServiceState, ns: str, documents_by_default: bool
) -> RerankResponse:
    from pluralign.server.openai.chat import ranked

    c = chooser(request)
    given = [where for where, v in (("target", body.target), ("profile", body.profile)) if v is not None]
    if body.pluralign is not None and given:
        raise HTTPException(422, f"{given[0]}: send it at the top level or inside pluralign, not both")
    if len(body.documents) > s.config.limits.max_documents:
        raise HTTPException(
            422,
            f"documents: {len(body.documents)} exceed the limit of {s.config.limits.max_documents} (--max-documents)",
        )
    if body.user is not None:
        try:
            check_user(body.user)
        except ValueError as exc:
            raise HTTPException(422, f"user: {exc}") from None
    texts = document_texts(body)
    longest = max([len(body.query), *map(len, texts)])
    if longest > s.config.limits.max_text_chars:
        raise HTTPException(
            422, f"a text of {longest} characters exceeds the limit of {s.config.limits.max_text_chars}"
        )
    steering = body.pluralign or Steering(target=body.target, profile=body.profile)
    field = "pluralign.target" if body.pluralign is not None else "target"
    target, _ = await steering_target(s, steering, body.model, body.user, ns, field)
    at_most = s.config.limits.max_responses  # more documents are judged in groups of this many
    quicker = judging_overrides(s)
    result = await s.queue.run(
        lambda: c.choose(body.query, texts, target, overrides=quicker, judge_at_most=at_most), request.is_disconnected
    )
    order = ranked(result, len(texts))[: body.top_n or len(texts)]
    with_documents = documents_by_default if body.return_documents is None else body.return_documents
    return RerankResponse(
        id=f"rerank-{uuid.uuid4().hex}",
        model=body.model or result.method,
        results=[
            RerankResult(
                index=i,
                relevance_score=_score(result, i),
                document=_as_sent(body.documents[i]) if with_documents else None,
            )
            for i in order
        ],
        usage=RerankUsage(total_tokens=result.prompt_tokens + result.completion_tokens),
        meta={"billed_units": {"search_units": 1}},
        pluralign=RerankSteering(
            target=result.target,
            method=result.method,
            group=result.group if result.shares is not None else None,
            members=result.members if result.shares is not None else None,
            shares=result.shares,
        ),
    )


async def _handle(
    body: RerankRequest, request: Request, s: ServiceState, ns: str, documents_by_default: bool = True
) -> Response:
    async def work() -> RerankResponse:
        return await _rerank(body, request, s, ns, documents_by_default)

    return await shaped(work)


@router.post("/v1/rerank", response_model=RerankResponse, responses=ERRORS)
async def rerank(
    body: RerankRequest, request: Request, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Response:
    """Documents best first for the person (vLLM, Jina and Cohere v1's shape)."""
    return await _handle(body, request, s, ns)


@router.post("/rerank", response_model=RerankResponse, responses=ERRORS, include_in_schema=False)
async def rerank_bare(
    body: RerankRequest, request: Request, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Response:
    return await _handle(body, request, s, ns)


@router.post("/v2/rerank", response_model=RerankResponse, responses=ERRORS)
async def rerank_v2(
    body: RerankRequest, request: Request, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Response:
    """Documents best first for the person (Cohere v2's shape: the same answer, ``document`` omitted
    unless ``return_documents``)."""
    return await _handle(body, request, s, ns, documents_by_default=False)
