"""``POST /v1/feedback``: a person's choice joins their history and their profile is fitted
again (``profile fit`` on their history), so the next request for that ``user`` uses it;
``GET /v1/users/{user}/profile`` shows it, ``DELETE /v1/users/{user}`` forgets the user.

A feedback is one unit: it is checked whole (attributes known and named once, predictions
for every response over the same attributes, the fit within the service's grid and work
limits), the profile is fitted on the history as it would be with the choice, and the choice
and that profile are stored together, only if the user's history is still the one that was
read (another feedback meanwhile: fitted again; the user forgotten meanwhile: 409, nothing
stored). A request that fails stores nothing. Feedback on one completion is idempotent: the
same answer again changes nothing, another answer replaces the first. Feedback sent as question
and responses is idempotent the same way under an ``Idempotency-Key`` header (a retry after a lost
answer stores the choice once); the key's first question and responses are the only ones it takes.

Histories and profiles live in the service's user store (:mod:`pluralign.people.userstore`), in the
namespace of the request's key; a user's name is a label in its rows, never a path, and any
name feedback accepts is reachable at ``/v1/users/{user}`` (percent-encoded: ``team%2Fann``).
The fit runs on the profile worker, never on the event loop; choices without predictions are
judged first (on the judge's worker).
"""

from __future__ import annotations

import asyncio
import random
import unicodedata
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from pydantic import AfterValidator, BaseModel, Field, StrictStr, model_validator

from pluralign.api import fill_predictions
from pluralign.choice.probes import Question, Responses
from pluralign.people.profile import ChoiceRecord, attributes_of, check_predictions, fit_profile
from pluralign.people.userstore import HistoryChanged, UserSnapshot
from pluralign.server.state import ServiceState, namespace, state
from pluralign.support.errors import InputError
from pluralign.support.strict import Closed, Count, Number

router = APIRouter(prefix="/v1", tags=["feedback"])
USER_NAME_CHARS = 256
MAX_ATTEMPTS = 12
"""Fits of one feedback that other feedback for the same user may overtake before it gives up (503).
One replica takes a user's feedback one at a time; replicas sharing a database race, and the
loser waits a random while before it fits again, so no replica starves another."""
BACKOFF_SECONDS = 0.05


def check_user(name: str) -> str:
    if not 1 <= len(name) <= USER_NAME_CHARS:
        raise ValueError(f"a user name has 1 to {USER_NAME_CHARS} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValueError("a user name has no control characters")
    return name


IDEMPOTENCY_KEY_CHARS = 255
KEY_PREFIX = "idempotency-key:"
"""How a body feedback's key is kept beside completion ids (which never start so: they are ours)."""


def idempotency_key(key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> str | None:
    """The choice key of a feedback sent as question and responses (None: none given)."""
    if key is None:
        return None
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_CHARS or not key.isascii() or not key.isprintable():
        raise HTTPException(422, f"Idempotency-Key: 1 to {IDEMPOTENCY_KEY_CHARS} printable ASCII characters")
    return KEY_PREFIX + key


UserName = Annotated[StrictStr, AfterValidator(check_user)]
"""A user's name wherever a request carries one (feedback, chat, rerank): a label kept in the user
store and shown in logs, so one rule for all of them."""


class FeedbackRequest(Closed):
    user: UserName
    completion_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    question: Question | None = None
    responses: Responses | None = None
    chosen: Count | None = Field(
        default=None, description="The preferred response's index (a candidate's); null: no preference."
    )
    choice: Count | None = Field(
        default=None,
        description="With completion_id: the preferred answer's position in the completion's choices, as shown.",
    )
    predictions: list[dict[str, Number]] | None = None
    attributes: list[StrictStr] | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _one_answer(self) -> FeedbackRequest:
        given = {"chosen", "choice"} & self.model_fields_set
        if len(given) != 1:
            raise ValueError("send chosen (a candidate index, or null for no preference) or choice (a position), one")
        if "choice" in given and self.completion_id is None:
            raise ValueError("choice: a position in a completion's choices needs completion_id")
        return self


class FeedbackResponse(BaseModel):
    user: str
    n_choices: int
    """How many choices the user's history holds."""
    profile: dict[str, Any]
    unchanged: bool = False
    """True when the same answer to the same completion was sent again (nothing was stored)."""


class UserProfile(BaseModel):
    user: str
    n_choices: int
    """How many choices the profile was fitted on."""
    profile: dict[str, Any]


class Forgotten(BaseModel):
    user: str
    forgotten: bool
    rows_removed: int


async def _record(body: FeedbackRequest, s: ServiceState, ns: str) -> ChoiceRecord:
    """The choice as a history record, from the completion it answers or from the body, checked
    whole (responses within limits, predictions of known attributes, the same for every response)."""
    if body.completion_id is not None:
        if body.question is not None or body.responses is not None or body.predictions is not None:
            raise HTTPException(422, "send either completion_id or question and responses (and predictions), not both")
        found = await asyncio.to_thread(s.users.completion, ns, body.completion_id)
        if found is None:
            raise HTTPException(422, f"completion_id: no completion {body.completion_id!r} on this service")
        owner, stored = found
        if owner is not None and owner != body.user:
            raise HTTPException(422, "completion_id: that completion was made for another user")
        if stored is None:
            raise HTTPException(422, "completion_id: that completion had one answer; there was no choice to learn from")
        chosen = body.chosen if body.choice is None else await _candidate_of(s, ns, body.completion_id, body.choice)
        record = stored.model_copy(update={"id": body.completion_id, "chosen": chosen})
    else:
        if body.question is None or body.responses is None:
            raise HTTPException(422, "send completion_id, or question and responses")
        s.admission.probe(body.question, body.responses)
        record = ChoiceRecord(
            id=f"feedback-{uuid.uuid4().hex}",
            question=body.question,
            responses=body.responses,
            chosen=body.chosen,
            predictions=body.predictions,
        )
    try:
        record = record.check()
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    if record.predictions is not None:
        names = list(record.predictions[0])
        s.admission.attributes(names, "predictions")
        for i, p in enumerate(record.predictions):
            if set(p) != set(names):
                raise HTTPException(422, f"predictions: response {i} names other attributes than response 0")
    return record


async def _candidate_of(s: ServiceState, ns: str, completion_id: str, choice: int) -> int:
    """The candidate behind a position in a completion's ``choices`` (its ``pluralign.order``)."""
    from pluralign.server.openai.protocol import ChatCompletion

    answer = await asyncio.to_thread(s.users.completion_response, ns, completion_id)
    if answer is None:
        raise HTTPException(422, f"completion_id: no completion {completion_id!r} on this service")
    shown = ChatCompletion.model_validate_json(answer)
    if choice >= len(shown.choices):
        raise HTTPException(422, f"choice: the completion has {len(shown.choices)} choices, got position {choice}")
    return shown.pluralign.order[choice]


def _profile(fitted: Any) -> dict[str, Any]:
    return {**fitted.model_dump(), "target_file": fitted.file_dict()}


async def _fit_and_commit(
    s: ServiceState, request: Request, read: UserSnapshot, body: FeedbackRequest, record: ChoiceRecord, key: str | None
) -> FeedbackResponse:
    """Fit on the history as it would be with this choice, then store both or neither."""
    history = read.with_choice(key, record)
    names = body.attributes or attributes_of(history)
    if not names:
        raise HTTPException(422, "attributes: the choices have no attributes in common; name the attributes")
    attrs = s.admission.attributes(names)
    window = s.admission.profile_window(attrs, history)
    try:
        check_predictions(window, names)
    except InputError as exc:
        raise HTTPException(422, f"predictions: {exc}") from None
    fitted = await s.profile_queue.run(lambda: fit_profile(attrs, window), request.is_disconnected)
    profile = _profile(fitted)
    n = await asyncio.to_thread(s.users.commit_choice, read, key, record, profile, len(window))
    return FeedbackResponse(user=body.user, n_choices=n, profile=profile)


@router.post("/feedback", response_model=FeedbackResponse)
async def feedback(
    body: FeedbackRequest,
    request: Request,
    s: ServiceState = Depends(state),
    ns: str = Depends(namespace),
    given_key: str | None = Depends(idempotency_key),
) -> FeedbackResponse:
    """Record which response the person preferred, and fit their profile again."""
    if body.attributes is not None:
        s.admission.attributes(body.attributes)
    if given_key is not None and body.completion_id is not None:
        raise HTTPException(422, "Idempotency-Key: a completion's feedback is keyed by its completion_id already")
    record = await _record(body, s, ns)
    async with s.user_locks.hold(ns, body.user):
        return await _feedback(body, request, s, ns, record, body.completion_id or given_key)


async def _feedback(
    body: FeedbackRequest, request: Request, s: ServiceState, ns: str, record: ChoiceRecord, key: str | None
) -> FeedbackResponse:
    """``key``: the choice's key in the user's history (a completion's id, or a body's
    Idempotency-Key): one choice per key, the same answer again changing nothing."""
    read = await asyncio.to_thread(s.users.snapshot, ns, body.user)
    earlier = read.find(key)
    if earlier is not None and body.completion_id is None and not _same_item(earlier.record, record):
        raise HTTPException(422, "Idempotency-Key: already used for another question or other responses")
    if earlier is not None and earlier.record.chosen == record.chosen:  # the same answer again: nothing changes
        stored = await asyncio.to_thread(s.users.profile, ns, body.user)
        if stored is not None:
            return FeedbackResponse(user=body.user, n_choices=len(read.history), profile=stored.profile, unchanged=True)
    if record.predictions is None:  # judged once, before any fit, and stored with the choice
        names = body.attributes or attributes_of([c.record for c in read.history])
        if not names:
            raise HTTPException(422, "attributes: name the attributes to learn (this user has no history yet)")
        s.admission.attributes(names)
        c = s.chooser
        record = (await s.queue.run(lambda: fill_predictions([record], c, names), request.is_disconnected))[0]
    for attempt in range(MAX_ATTEMPTS):
        try:
            return await _fit_and_commit(s, request, read, body, record, key)
        except HistoryChanged:  # another feedback for this user landed first: fit on the history as it is now
            await asyncio.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** min(attempt, 4)))
            read = await asyncio.to_thread(s.users.snapshot, ns, body.user)
    raise HistoryChanged(f"user {body.user!r} is receiving other feedback; nothing was stored, retry")


def _same_item(stored: ChoiceRecord, new: ChoiceRecord) -> bool:
    """Whether a keyed feedback is about what the key first stored (its predictions, if sent)."""
    same = stored.question == new.question and list(stored.responses) == list(new.responses)
    return same and (new.predictions is None or new.predictions == stored.predictions)


def path_user(user: str) -> str:
    """A user name from the path, checked as a body's is (a label, never a path)."""
    try:
        return check_user(user)
    except ValueError as exc:
        raise HTTPException(422, f"user: {exc}") from None


@router.get("/users/{user:path}/profile", response_model=UserProfile)
async def user_profile(
    user: str = Depends(path_user), s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> UserProfile:
    """The user's current profile and how many choices it rests on."""
    stored = await asyncio.to_thread(s.users.profile, ns, user)
    if stored is None:
        raise HTTPException(404, "no profile is stored for this user")
    return UserProfile(user=user, n_choices=stored.n_choices, profile=stored.profile)


@router.delete("/users/{user:path}", response_model=Forgotten)
async def forget_user(
    user: str = Depends(path_user), s: ServiceState = Depends(state), ns: str = Depends(namespace)
) -> Forgotten:
    """Forget a user: their history, profile and steered completions. Feedback for them that is
    still being worked on stores nothing (409)."""
    removed = await asyncio.to_thread(s.users.forget, ns, user)
    return Forgotten(user=user, forgotten=removed > 0, rows_removed=removed)
