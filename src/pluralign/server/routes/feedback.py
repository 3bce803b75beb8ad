"""``POST /v1/feedback``: a person's choice joins their history and their profile is fitted
again (``profile fit`` on the whole history), so the next request for that ``user`` uses it;
``GET /v1/users/{user}/profile`` shows it, ``DELETE /v1/users/{user}`` forgets the user.

Histories and profiles live in the service's SQLite database (:mod:`pluralign.userstore`);
a user's name is a label in its rows, never a path. The fit runs on the profile worker,
never on the event loop; choices without predictions are judged first (on the judge's
worker). One user's feedback touches only that user's rows.
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AfterValidator, BaseModel, Field, StrictStr

from pluralign.api import fill_predictions
from pluralign.probes import Responses, Text
from pluralign.profile import ChoiceRecord, attributes_of, fit_profile
from pluralign.server.state import ServiceState, check_probe, state
from pluralign.strict import Count, Number

router = APIRouter(prefix="/v1", tags=["feedback"])
USER_NAME_CHARS = 256


def check_user(name: str) -> str:
    if not 1 <= len(name) <= USER_NAME_CHARS:
        raise ValueError(f"a user name has 1 to {USER_NAME_CHARS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValueError("a user name has no control characters")
    return name


UserName = Annotated[StrictStr, AfterValidator(check_user)]
"""A user's name wherever a request carries one (feedback, chat, rerank): a label kept in SQLite
and shown in logs, so one rule for all of them."""


class FeedbackRequest(BaseModel):
    user: UserName
    completion_id: StrictStr | None = Field(default=None, max_length=100)
    question: Text | None = None
    responses: Responses | None = None
    chosen: Count | None = Field(description="The preferred response's index; null: no preference.")
    predictions: list[dict[str, Number]] | None = None
    attributes: list[StrictStr] | None = Field(default=None, min_length=1, max_length=64)


async def _record(body: FeedbackRequest, s: ServiceState) -> ChoiceRecord:
    """The choice as a history record, from the completion it answers or from the body."""
    if body.completion_id is not None:
        if body.question is not None or body.responses is not None:
            raise HTTPException(422, "send either completion_id or question and responses, not both")
        found = await asyncio.to_thread(s.users.completion, body.completion_id)
        if found is None:
            raise HTTPException(422, f"completion_id: no completion {body.completion_id!r} on this service")
        owner, record = found
        if owner is not None and owner != body.user:
            raise HTTPException(422, "completion_id: that completion was made for another user")
        record = ChoiceRecord(
            id=record.id,
            question=record.question,
            responses=record.responses,
            chosen=body.chosen,
            predictions=record.predictions,
        )
    else:
        if body.question is None or body.responses is None:
            raise HTTPException(422, "send completion_id, or question and responses")
        check_probe(s.config, body.question, body.responses)
        record = ChoiceRecord(
            id=f"feedback-{body.user}",
            question=body.question,
            responses=body.responses,
            chosen=body.chosen,
            predictions=body.predictions,
        )
    try:
        return record.check()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


async def refit(s: ServiceState, request: Request, user: str, names: list[str] | None) -> dict[str, Any]:
    """Fit ``user``'s profile on their whole history (the latest ``--max-profile-choices``)."""
    history = await asyncio.to_thread(s.users.history, user)
    history = history[-s.config.limits.max_profile_choices :]
    names = names or attributes_of(history)
    if not names:
        raise HTTPException(422, "no choice of this user has predictions: name the attributes")
    attrs = s.config.registry.require(names)
    if any(r.predictions is None for r in history):
        c = s.chooser
        history = await s.queue.run(lambda: fill_predictions(history, c, names), request.is_disconnected)
    fitted = await s.profile_queue.run(lambda: fit_profile(attrs, history), request.is_disconnected)
    profile = {**fitted.model_dump(), "target_file": fitted.file_dict()}
    await asyncio.to_thread(s.users.set_profile, user, profile, len(history))
    return profile


@router.post("/feedback")
async def feedback(body: FeedbackRequest, request: Request, s: ServiceState = Depends(state)) -> dict[str, Any]:
    """Record which response the person preferred, and fit their profile again."""
    record = await _record(body, s)
    if record.predictions is None and s.chooser is not None:  # judged once, stored with the choice
        names = body.attributes or attributes_of(await asyncio.to_thread(s.users.history, body.user))
        if not names:
            raise HTTPException(422, "attributes: name the attributes to learn (this user has no history yet)")
        s.config.registry.require(names)
        c = s.chooser
        record = (await s.queue.run(lambda: fill_predictions([record], c, names), request.is_disconnected))[0]
    n = await asyncio.to_thread(s.users.add_choice, body.user, record)
    profile = await refit(s, request, body.user, body.attributes)
    return {"user": body.user, "n_choices": n, "profile": profile}


def path_user(user: str) -> str:
    """A user name from the path, checked as a body's is (a label, never a path)."""
    try:
        return check_user(user)
    except ValueError as exc:
        raise HTTPException(422, f"user: {exc}") from None


@router.get("/users/{user}/profile")
async def user_profile(user: str = Depends(path_user), s: ServiceState = Depends(state)) -> dict[str, Any]:
    """The user's current profile and how many choices it rests on."""
    stored = await asyncio.to_thread(s.users.profile, user)
    if stored is None:
        raise HTTPException(404, "no profile is stored for this user")
    profile, n = stored
    return {"user": user, "n_choices": n, "profile": profile}


@router.delete("/users/{user}")
async def forget_user(user: str = Depends(path_user), s: ServiceState = Depends(state)) -> dict[str, Any]:
    """Forget a user: their history, profile and steered completions."""
    removed = await asyncio.to_thread(s.users.forget, user)
    return {"user": user, "forgotten": removed > 0, "rows_removed": removed}
