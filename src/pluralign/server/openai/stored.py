"""OpenAI's stored-completions convention: ``GET /v1/chat/completions/{id}`` gives a steered
completion back, with its ``pluralign`` field (the explanation, the candidates and the order of
the choices, for feedback by a choice's position), to an app whose framework dropped it;
``GET /v1/chat/completions`` lists them by ``model`` and ``metadata``, for an app whose
framework hides even the id (LangChain's stream). Kept for ``--completion-ttl``, per key."""

from __future__ import annotations

import asyncio
import re
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from pluralign.server.openai.chat import ERRORS
from pluralign.server.openai.errors import openai_error, shaped
from pluralign.server.openai.protocol import ChatCompletion, ChatCompletionList
from pluralign.server.query import reads_query
from pluralign.server.state import ServiceState, namespace, state

router = APIRouter(tags=["openai"])

LIST_LIMIT = 100
METADATA_KEY = re.compile(r"^metadata\[(.{1,64})\]$")


@router.get("/v1/chat/completions", response_model=ChatCompletionList, responses=ERRORS)
@reads_query(METADATA_KEY.pattern)
async def stored_completions(
    request: Request,
    s: ServiceState = Depends(state),
    ns: str = Depends(namespace),
    model: str | None = None,
    after: str | None = None,
    limit: int = Query(default=20, ge=1, le=LIST_LIMIT),
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    """Stored completions, oldest first (OpenAI's list): of one ``model``, with the given
    ``metadata[key]=value`` pairs. How an app whose framework hides a streamed completion's id
    (LangChain) finds it: send ``metadata`` with the request, list by it."""
    metadata: dict[str, str] = {}
    for key, value in request.query_params.multi_items():  # admission refused any other key
        found = METADATA_KEY.match(key)
        if found:
            metadata[found.group(1)] = value

    async def work() -> ChatCompletionList:
        answers, more = await asyncio.to_thread(
            s.users.completion_responses, ns, model, metadata, after, limit, order == "desc"
        )
        data = [ChatCompletion.model_validate_json(a) for a in answers]
        return ChatCompletionList(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=more,
        )

    return await shaped(work)


@router.get("/v1/chat/completions/{completion_id}", response_model=ChatCompletion, responses=ERRORS)
async def stored_completion(
    completion_id: str, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Response:
    """A stored completion with its ``pluralign`` field (the explanation, the candidates and the
    order of the choices, for feedback), while it is kept (``--completion-ttl``)."""
    found = await asyncio.to_thread(s.users.completion_response, ns, completion_id)
    if found is None:
        return openai_error(404, f"no completion {completion_id!r} is stored on this service", "completion_id")
    return Response(found, media_type="application/json")
