"""The Python API: score responses once, choose for any number of targets, say why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pluralign.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.errors import InputError
from pluralign.explain import Explanation, explain_choice
from pluralign.methods import Judgement, Method, build_method
from pluralign.methods.llm import LLMMethod
from pluralign.methods.registry import DEFAULT_METHOD
from pluralign.probes import make_probe
from pluralign.selection import Metric, TieRule
from pluralign.settings import Settings, make_settings
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
    weights: dict[str, float] | None = None
    method: str
    explanation: Explanation | None = None
    confidence: float | None = None
    near_tie: bool = False
    samples: dict[str, list[dict[str, Any]]] = {}
    llm_calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


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
        method: str | Method = DEFAULT_METHOD,
        settings: Settings | None = None,
        registry: AttributeRegistry = DEFAULT_REGISTRY,
        metric: Metric | str = Metric.auto,
        ties: TieRule | str = TieRule.exact,
    ) -> None:
        self.method = method if isinstance(method, Method) else build_method(method, settings)
        self.registry = registry
        self.metric = metric
        self.ties = ties

    def _method(self, overrides: Mapping[str, Any] | None) -> Method:
        """The loaded method, or a copy with other generation settings (never a change to it)."""
        if not overrides:
            return self.method
        if not isinstance(self.method, LLMMethod):
            raise InputError(f"method {self.method.name} takes no generation options ({', '.join(overrides)})")
        return self.method.with_options(self.method.options.override(**overrides))

    def predict(
        self,
        question: Any,
        responses: Any,
        attributes: Sequence[str],
        seed: int = 0,
        target: AlignmentTarget | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Judgement:
        probe = make_probe(question, responses)
        method = self._method(overrides)
        return method.judge(probe, self.registry.require(attributes), target, seed=seed)

    def choose(
        self,
        question: Any,
        responses: Any,
        target: AlignmentTarget | Mapping[str, Any] | str | Path,
        seed: int = 0,
        overrides: Mapping[str, Any] | None = None,
    ) -> ChooseResult:
        probe = make_probe(question, responses)
        goal = as_target(target, self.registry)
        method = self._method(overrides)
        judgement = method.judge(
            probe, self.registry.require(goal.attributes), goal if method.target_dependent else None, seed=seed
        )
        choice = method.choose(judgement, goal, self.metric, self.ties)
        explanation = None
        if judgement.predictions is not None:
            explanation = explain_choice(
                judgement.predictions, choice, goal, judgement.draws, judgement.level_probs, self.metric, self.ties
            )
        return ChooseResult(
            selected_index=choice.index,
            selected_response=probe.responses[choice.index],
            reasoning=choice.reasoning,
            predictions=judgement.predictions,
            reasonings=judgement.reasonings,
            distances=choice.distances,
            tied=choice.tied,
            target=dict(goal.values),
            weights=dict(goal.weights) if goal.weights else None,
            method=method.name,
            explanation=explanation,
            confidence=explanation.confidence if explanation else None,
            near_tie=explanation.near_tie if explanation else False,
            samples=judgement.samples,
            llm_calls=judgement.stats.calls,
            cached_calls=judgement.stats.cached,
            prompt_tokens=judgement.stats.prompt_tokens,
            completion_tokens=judgement.stats.completion_tokens,
        )

    def close(self) -> None:
        self.method.close()


def choose(
    question: str,
    responses: Sequence[str],
    target: AlignmentTarget | Mapping[str, Any] | str | Path,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    **settings: Any,
) -> ChooseResult:
    """Choose the response that best fits ``target``; ``settings`` are :class:`Settings` fields."""
    chooser = Chooser(method, make_settings(settings))
    try:
        return chooser.choose(question, responses, target, seed=seed)
    finally:
        chooser.close()


def fill_predictions(records: Sequence[Any], chooser: Chooser | None, attributes: Sequence[str]) -> list[Any]:
    """Profile records (:class:`pluralign.profile.ChoiceRecord`) with predictions for every
    attribute: records without predictions are scored by the chooser's method (cached as
    usual); predictions that lack an attribute are an error, never filled in."""
    from pluralign.profile import check_predictions

    check_predictions([r for r in records if r.predictions is not None], attributes)
    out = []
    for record in records:
        if record.predictions is not None:
            out.append(record)
            continue
        if chooser is None:
            raise InputError(f"record {record.id!r} has no predictions for {', '.join(attributes)}")
        judgement = chooser.predict(record.question, record.responses, attributes)
        if judgement.predictions is None:
            raise InputError(f"method {chooser.method.name} predicts no attribute values; use spm or embedding")
        out.append(record.model_copy(update={"predictions": judgement.predictions}))
    return out


class RespondResult(BaseModel):
    """A steered answer: the candidate closest to the target, and how it was chosen."""

    response: str
    selected_index: int
    candidates: list[str]
    choice: ChooseResult
    generator_model: str
    generation_tokens: int


def respond(
    question: str,
    target: AlignmentTarget | Mapping[str, Any] | str | Path,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    generator: Any = None,
    **settings: Any,
) -> RespondResult:
    """Generate candidates (``generator``: :class:`pluralign.generators.GeneratorOptions`; the
    local model by default), then choose the one that fits ``target``."""
    from pluralign.generators import Draw, GeneratorOptions, make_generator
    from pluralign.judges.base import ChatMessage

    options = generator or GeneratorOptions()
    chosen_settings = make_settings(settings)
    maker = make_generator(options, chosen_settings.model, chosen_settings.values.get("threads"))
    draw = Draw(
        k=options.candidates,
        temperature=options.generator_temperature,
        max_tokens=options.generator_max_tokens,
        seed=seed,
    )
    made = maker.generate_sync([ChatMessage(role="user", content=question)], draw)
    chooser = Chooser(method, chosen_settings)
    try:
        result = chooser.choose(question, made.texts, target, seed=seed)
    finally:
        chooser.close()
    return RespondResult(
        response=made.texts[result.selected_index],
        selected_index=result.selected_index,
        candidates=made.texts,
        choice=result,
        generator_model=made.model,
        generation_tokens=made.usage.prompt_tokens + made.usage.completion_tokens,
    )
