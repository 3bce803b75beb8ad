"""``GET /v1/models``: what can be asked for by name: ``pluralign`` (the served method, steered
by the request's target or user) and ``pluralign/NAME`` for each saved profile (``--profiles``),
so a chat UI that cannot send ``extra_body`` picks a person by picking a model."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends

from pluralign.server.openai.protocol import ModelCard, ModelList
from pluralign.server.openai.steering import MODEL_PREFIX, PROFILE_NAME
from pluralign.server.state import ServiceState, state

router = APIRouter(tags=["openai"])
STARTED = int(time.time())


@router.get("/v1/models", response_model=ModelList)
async def models(s: ServiceState = Depends(state)) -> ModelList:
    """The served method, and a model per saved profile."""
    names = ["pluralign"]
    folder = s.config.limits.profiles_dir
    if folder is not None and folder.is_dir():
        names += [MODEL_PREFIX + f.stem for f in sorted(folder.glob("*.json")) if PROFILE_NAME.fullmatch(f.stem)]
    return ModelList(data=[ModelCard(id=name, created=STARTED) for name in names])
