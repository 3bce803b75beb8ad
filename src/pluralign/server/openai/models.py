"""``GET /v1/models``: what can be asked for by name: ``pluralign`` (the served method, steered
by the request's target or user) and ``pluralign/NAME`` for each saved profile (``--profiles``)
the caller's namespace sees, so a chat UI that cannot send ``extra_body`` picks a person by
picking a model."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Depends

from pluralign.server.openai.protocol import ModelCard, ModelList
from pluralign.server.openai.steering import MODEL_PREFIX
from pluralign.server.state import ServiceState, namespace, state

router = APIRouter(tags=["openai"])
STARTED = int(time.time())


@router.get("/v1/models", response_model=ModelList)
async def models(s: ServiceState = Depends(state), ns: str = Depends(namespace)) -> ModelList:
    """The served method, and a model per saved profile the caller's namespace sees."""
    names = ["pluralign"] + [MODEL_PREFIX + name for name in await asyncio.to_thread(s.saved.names, ns)]
    return ModelList(data=[ModelCard(id=name, created=STARTED) for name in names])
