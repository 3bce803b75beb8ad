"""``POST /v1/choose`` and ``POST /v1/predict`` (``/v1/score``, its old name, still answers,
marked deprecated): decisions go through the bounded queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field, StrictStr

from pluralign.api import Chooser, ChooseResult
from pluralign.choice.probes import Question, Responses
from pluralign.server.state import ServiceState, chooser, state
from pluralign.support.strict import Closed, Count, Seed

router = APIRouter(prefix="/v1", tags=["decisions"])


class _Probe(Closed):
    question: Question
    responses: Responses
    seed: Seed = 0
    samples: Count | None = Field(default=None, ge=1)


class ChooseRequest(_Probe):
    target: dict[str, Any] | list[Any] = Field(
        description='A target ({"care": 1}), or a group: a list of weighted profiles, {"group": [...]} or '
        '{"samples": [...]}; a group\'s answer carries shares, one per response.'
    )


class PredictRequest(_Probe):
    attributes: list[StrictStr] = Field(min_length=1)


class PredictResponse(BaseModel):
    predictions: list[dict[str, float]] | None
    reasonings: list[dict[str, str]] | None
    samples: dict[str, list[dict[str, Any]]]
    method: str


@router.post("/choose", response_model=ChooseResult)
async def choose(
    body: ChooseRequest, request: Request, s: ServiceState = Depends(state), c: Chooser = Depends(chooser)
) -> ChooseResult:
    """Choose the response closest to the target, with predictions, explanation and confidence."""
    s.admission.probe(body.question, body.responses)
    target = s.admission.target(body.target)
    overrides = s.admission.samples(body.samples)
    return await s.queue.run(
        lambda: c.choose(body.question, body.responses, target, seed=body.seed, overrides=overrides),
        request.is_disconnected,
    )


@router.post("/predict", response_model=PredictResponse)
async def predict(
    body: PredictRequest, request: Request, s: ServiceState = Depends(state), c: Chooser = Depends(chooser)
) -> PredictResponse:
    """Predicted attribute values per response (no target: scores do not depend on it)."""
    s.admission.probe(body.question, body.responses)
    if c.method.target_dependent:
        raise HTTPException(422, f"method {c.method.name} needs a target; use /v1/choose")
    s.admission.attributes(body.attributes)
    overrides = s.admission.samples(body.samples)
    judgement = await s.queue.run(
        lambda: c.predict(body.question, body.responses, body.attributes, seed=body.seed, overrides=overrides),
        request.is_disconnected,
    )
    if judgement.predictions is None:
        raise HTTPException(422, f"method {c.method.name} picks a response but predicts no attribute values")
    return PredictResponse(
        predictions=judgement.predictions,
        reasonings=judgement.reasonings,
        samples=judgement.samples,
        method=c.method.name,
    )


@router.post("/score", response_model=PredictResponse, deprecated=True)
async def score(
    body: PredictRequest,
    request: Request,
    response: Response,
    s: ServiceState = Depends(state),
    c: Chooser = Depends(chooser),
) -> PredictResponse:
    """The old name of ``/v1/predict``."""
    response.headers["Deprecation"] = "true"
    response.headers["Link"] = '</v1/predict>; rel="successor-version"'
    return await predict(body, request, s, c)
