"""``/v1/profile/*``: learn a profile from picks and ask the next question; ``/v1/profiles``:
the saved profiles (targets) of the ``--profiles`` folder, as the caller's namespace sees them.

The fit and the choice of question are numpy work that grows with profiles x responses:
it never runs on the event loop. Each request is checked against the service's limits
(choices, responses per record, text length, ``max_profile_work``) before any work, and
then runs on the profile worker under ``profile_timeout``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import Field, StrictStr

from pluralign.api import fill_predictions
from pluralign.choice.target_data import profile_from_data
from pluralign.people.profile import (
    ChoiceRecord,
    attributes_of,
    builtin_pool,
    check_predictions,
    fit_profile,
)
from pluralign.people.questions import next_question
from pluralign.people.saved_profiles import check_name
from pluralign.server.state import ServiceState, namespace, state
from pluralign.support.errors import InputError
from pluralign.support.strict import Closed, Number

router = APIRouter(prefix="/v1/profile", tags=["profile"])
saved = APIRouter(prefix="/v1/profiles", tags=["profile"])
MAX_RECORDS = 10_000
"""The body's own bound; the service's --max-profile-choices (default 1000) is the real one."""


class FitRequest(Closed):
    choices: list[ChoiceRecord] = Field(min_length=1, max_length=MAX_RECORDS)
    attributes: list[StrictStr] | None = Field(default=None, max_length=64)


class NextRequest(Closed):
    choices: list[ChoiceRecord] = Field(default_factory=list, max_length=MAX_RECORDS)
    pool: list[ChoiceRecord] | None = Field(default=None, max_length=MAX_RECORDS)
    attributes: list[StrictStr] | None = Field(default=None, max_length=64)


def _checked(s: ServiceState, records: list[ChoiceRecord], what: str) -> list[ChoiceRecord]:
    limit = s.config.limits.max_profile_choices
    if len(records) > limit:
        raise HTTPException(422, f"{what}: {len(records)} records exceed the limit of {limit}")
    out = []
    for i, r in enumerate(records):
        s.admission.probe(r.question, r.responses, f"{what}[{i}]")
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
    choices = _checked(s, body.choices, "choices")
    for i, r in enumerate(choices):
        if not r.answered:
            raise HTTPException(422, f"choices[{i}]: no 'chosen' (an index, or null for no preference)")
    names = body.attributes or attributes_of(choices)
    if not names:
        raise HTTPException(422, "no choice has predictions: name the attributes")
    attrs = s.admission.attributes(names)
    s.admission.profile_work(attrs, choices)
    choices = await _predicted(s, request, choices, names)
    fitted = await s.profile_queue.run(lambda: fit_profile(attrs, choices), request.is_disconnected)
    return {**fitted.model_dump(), "target_file": fitted.file_dict()}


@router.post("/next")
async def next_(body: NextRequest, request: Request, s: ServiceState = Depends(state)) -> dict[str, Any]:
    choices = _checked(s, body.choices, "choices")
    candidates = _checked(s, body.pool, "pool") if body.pool is not None else builtin_pool()
    if not candidates:
        raise HTTPException(422, "pool: no questions to ask")
    names = body.attributes or attributes_of(choices + candidates)
    if not names:
        raise HTTPException(422, "no record has predictions: name the attributes")
    attrs = s.admission.attributes(names)
    s.admission.profile_work(attrs, choices + candidates)
    asked = {r.id for r in choices}
    choices = await _predicted(s, request, choices, names)
    unasked = await _predicted(s, request, [r for r in candidates if r.id not in asked], names)
    best = await s.profile_queue.run(lambda: next_question(attrs, choices, unasked), request.is_disconnected)
    index = next(i for i, r in enumerate(candidates) if r.id == best.id)
    item = candidates[index]
    return {
        "id": best.id,
        "index": index,
        "expected_agreement": best.expected_agreement,
        "information_bits": best.information_bits,
        "question": item.question,
        "responses": item.responses,
    }


@saved.get("")
async def profiles(s: ServiceState = Depends(state), ns: str = Depends(namespace)) -> list[dict[str, Any]]:
    """The person profiles the caller's namespace sees (its own, then the catalog's), for the
    page's sliders; a saved group is steered to by name (``/v1/models`` lists it) but has no
    values to set sliders to."""
    return await asyncio.to_thread(_profiles, s, ns)


def _profiles(s: ServiceState, ns: str) -> list[dict[str, Any]]:
    out = []
    for name in s.saved.names(ns):
        try:
            target = profile_from_data(s.saved.read(ns, name), name, s.config.registry)
        except InputError:
            continue
        entry: dict[str, Any] = {"name": name, "values": target.values}
        if target.weights:
            entry["weights"] = target.weights
        out.append(entry)
    return out


class SaveProfile(Closed):
    name: str = Field(min_length=1, max_length=64)
    values: dict[str, Number]
    weights: dict[str, Number] | None = None


@saved.post("")
async def save_profile(
    body: SaveProfile, s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> dict[str, Any]:
    """Save a profile (a target) for the caller's namespace: the ``--profiles`` folder itself for
    ``default``, its subfolder ``NAMESPACE/`` for an application's key."""
    if s.saved.folder is None:
        raise HTTPException(404, "this server was started without --profiles; the page keeps profiles in the browser")
    check_name(body.name)
    raw: dict[str, Any] = {"values": body.values, "weights": body.weights} if body.weights else dict(body.values)
    target = profile_from_data(raw, body.name, s.config.registry)
    data = target.to_file_dict() if body.weights else dict(target.values)
    await asyncio.to_thread(s.saved.save, ns, body.name, data)
    return {"name": body.name, "values": target.values, "weights": target.weights}
