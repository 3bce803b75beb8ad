"""``/v1/profile/*``: learn a profile from picks and ask the next question."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from pluralign.api import fill_predictions
from pluralign.profile import (
    ChoiceRecord,
    attributes_of,
    builtin_pool,
    check_predictions,
    fit_profile,
    next_question,
)
from pluralign.server.state import ServiceState, state

router = APIRouter(prefix="/v1/profile", tags=["profile"])
MAX_RECORDS = 1000


class FitRequest(BaseModel):
    choices: list[ChoiceRecord] = Field(min_length=1, max_length=MAX_RECORDS)
    attributes: list[str] | None = None


class NextRequest(BaseModel):
    choices: list[ChoiceRecord] = Field(default_factory=list, max_length=MAX_RECORDS)
    pool: list[ChoiceRecord] | None = Field(default=None, max_length=MAX_RECORDS)
    attributes: list[str] | None = None


def _checked(records: list[ChoiceRecord], what: str) -> list[ChoiceRecord]:
    out = []
    for i, r in enumerate(records):
        try:
            out.append(r.check())
        except ValueError as exc:
            raise HTTPException(422, f"{what}[{i}]: {exc}") from None
    return out


async def _predicted(
    s: ServiceState, request: Request, records: list[ChoiceRecord], names: list[str]
) -> list[ChoiceRecord]:
    check_predictions([r for r in records if r.predictions is not None], names)
    if all(r.predictions is not None for r in records):
        return records
    c = s.chooser
    return await s.queue.run(lambda: fill_predictions(records, c, names), request.is_disconnected)


@router.get("/pool")
async def pool() -> list[dict[str, Any]]:
    """The shipped probes with precomputed predictions, for the page's "Find my profile"."""
    return [r.model_dump() for r in builtin_pool()]


@router.post("/fit")
async def fit(body: FitRequest, request: Request, s: ServiceState = Depends(state)) -> dict[str, Any]:
    choices = _checked(body.choices, "choices")
    for i, r in enumerate(choices):
        if r.chosen is None:
            raise HTTPException(422, f"choices[{i}]: no 'chosen' index")
    names = body.attributes or attributes_of(choices)
    if not names:
        raise HTTPException(422, "no choice has predictions: name the attributes")
    attrs = s.config.registry.require(names)
    choices = await _predicted(s, request, choices, names)
    fitted = fit_profile(attrs, choices)
    return {**fitted.model_dump(), "target_file": fitted.file_dict()}


@router.post("/next")
async def next_(body: NextRequest, request: Request, s: ServiceState = Depends(state)) -> dict[str, Any]:
    choices = _checked(body.choices, "choices")
    candidates = _checked(body.pool, "pool") if body.pool is not None else builtin_pool()
    if not candidates:
        raise HTTPException(422, "pool: no questions to ask")
    names = body.attributes or attributes_of(choices + candidates)
    if not names:
        raise HTTPException(422, "no record has predictions: name the attributes")
    attrs = s.config.registry.require(names)
    asked = {r.id for r in choices}
    choices = await _predicted(s, request, choices, names)
    unasked = await _predicted(s, request, [r for r in candidates if r.id not in asked], names)
    best = next_question(attrs, choices, unasked)
    index = next(i for i, r in enumerate(candidates) if r.id == best.id)
    item = candidates[index]
    return {
        "id": best.id,
        "index": index,
        "information_bits": best.information_bits,
        "question": item.question,
        "responses": item.responses,
    }
