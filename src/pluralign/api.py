"""The Python API: score responses once, choose for any number of targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pluralign.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.errors import InputError
from pluralign.methods import Judgement, Method, MethodSettings, build_method
from pluralign.probes import Probe
from pluralign.selection import Metric
from pluralign.targets import AlignmentTarget, load_target_file, target_from_data


class ChooseResult(BaseModel):
    selected_index: int
    selected_response: str
    reasoning: str
    predictions: list[dict[str, float]] | None
    reasonings: list[dict[str, str]] | None = None
    distances: list[float] = []
    tied: list[int] = []
    target: dict[str, float]
    method: str
    samples: dict[str, list[dict[str, Any]]] = {}
    llm_calls: int = 0
    cached_calls: int = 0


def make_probe(question: str, responses: Sequence[str]) -> Probe:
    if len(responses) < 2:
        raise InputError(f"need at least 2 responses to choose between, got {len(responses)}")
    try:
        return Probe(prompt=question, responses=list(responses))
    except ValidationError as exc:
        raise InputError(exc.errors()[0]["msg"]) from None


def as_target(
    target: AlignmentTarget | Mapping[str, Any] | str | Path, registry: AttributeRegistry = DEFAULT_REGISTRY
) -> AlignmentTarget:
    if isinstance(target, AlignmentTarget):
        return target.check_known(registry)
    if isinstance(target, (str, Path)):
        return load_target_file(target, registry)
    return target_from_data(target, "target", registry)


class Chooser:
    """A method loaded once (model and examples), reused for many decisions."""

    def __init__(
        self,
        method: str | Method = "spm",
        settings: MethodSettings | None = None,
        registry: AttributeRegistry = DEFAULT_REGISTRY,
        metric: Metric | str = Metric.euclidean,
    ) -> None:
        self.method = method if isinstance(method, Method) else build_method(method, settings)
        self.registry = registry
        self.metric = metric

    def score(
        self,
        question: str,
        responses: Sequence[str],
        attributes: Sequence[str],
        seed: int = 0,
        target: AlignmentTarget | None = None,
    ) -> Judgement:
        probe = make_probe(question, responses)
        return self.method.judge(probe, self.registry.require(attributes), target, seed=seed)

    def choose(
        self,
        question: str,
        responses: Sequence[str],
        target: AlignmentTarget | Mapping[str, Any] | str | Path,
        seed: int = 0,
    ) -> ChooseResult:
        goal = as_target(target, self.registry)
        judgement = self.score(
            question, responses, goal.attributes, seed=seed, target=goal if self.method.target_dependent else None
        )
        choice = self.method.choose(judgement, goal, self.metric)
        return ChooseResult(
            selected_index=choice.index,
            selected_response=responses[choice.index],
            reasoning=choice.reasoning,
            predictions=judgement.predictions,
            reasonings=judgement.reasonings,
            distances=choice.distances,
            tied=choice.tied,
            target=dict(goal.values),
            method=self.method.name,
            samples=judgement.samples,
            llm_calls=judgement.stats.calls,
            cached_calls=judgement.stats.cached,
        )

    def close(self) -> None:
        self.method.close()


def choose(
    question: str,
    responses: Sequence[str],
    target: AlignmentTarget | Mapping[str, Any] | str | Path,
    method: str = "spm",
    seed: int = 0,
    **settings: Any,
) -> ChooseResult:
    """Choose the response that best fits ``target``; ``settings`` are :class:`MethodSettings` fields."""
    chooser = Chooser(method, MethodSettings(**settings))
    try:
        return chooser.choose(question, responses, target, seed=seed)
    finally:
        chooser.close()
