"""The Python API: score responses once, choose for any number of targets, say why."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.choice.explanation import Explanation, explain
from pluralign.choice.probes import Probe, check_question, make_probe
from pluralign.choice.selection import Metric, Selection, TieRule
from pluralign.choice.target_data import is_group_data, load_target_file, target_from_data
from pluralign.choice.targets import AlignmentTarget, GroupTarget, Target, target_values
from pluralign.prediction.calibration import Calibration
from pluralign.prediction.methods import Assessment, Method
from pluralign.prediction.methods.llm import LLMMethod
from pluralign.prediction.methods.registry import DEFAULT_METHOD
from pluralign.settings import Settings, build_generator, build_method, make_settings
from pluralign.support.errors import InputError
from pluralign.support.strict import check_seed


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
    shares: list[float] | None = None
    """For a group target: the weighted share of the group that would choose each response."""
    group: str | None = None
    members: int | None = None


TargetLike = AlignmentTarget | GroupTarget | Mapping[str, Any] | Sequence[Any] | str | Path
"""What the API takes as a target: a person's or a group's, as a model, a file (``.json``,
``.jsonl``) or its JSON data."""


def as_target(target: TargetLike, registry: AttributeRegistry = DEFAULT_REGISTRY) -> Target:
    """A person's target or a group's, from any of the forms :data:`TargetLike` allows."""
    if isinstance(target, (AlignmentTarget, GroupTarget)):
        return target.check_known(registry)
    if isinstance(target, (str, Path)):
        return load_target_file(target, registry)
    return target_from_data(target, "group" if is_group_data(target) else "target", registry)


def __getattr__(name: str) -> Any:
    """0.2's names ("goal" is now "target"), with a warning, until 0.4."""
    import warnings

    renamed = {"GoalLike": TargetLike, "as_goal": as_target}
    if name in renamed:
        warnings.warn(f"pluralign.api.{name} is renamed (goal is now target)", DeprecationWarning, stacklevel=2)
        return renamed[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Chooser:
    """A method loaded once (model and examples), reused for many decisions."""

    def __init__(
        self,
        method: str | Method = DEFAULT_METHOD,
        settings: Settings | None = None,
        registry: AttributeRegistry = DEFAULT_REGISTRY,
        metric: Metric | str = Metric.auto,
        ties: TieRule | str = TieRule.exact,
        selection: Selection | str = Selection.closest,
        calibration: Calibration | None = None,
    ) -> None:
        self.method = method if isinstance(method, Method) else build_method(method, settings)
        self.registry = registry
        self.metric = metric
        self.ties = ties
        self.selection = selection
        self.calibration = calibration
        if calibration is not None:  # another judge is refused before any question is asked
            calibration.check_judge(self.method.config())
        self._worker: ThreadPoolExecutor | None = None

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
    ) -> Assessment:
        probe = make_probe(question, responses)
        method = self._method(overrides)
        return method.assess(probe, self.registry.require(attributes), target, seed=check_seed(seed))

    def choose(
        self,
        question: Any,
        responses: Any,
        target: TargetLike,
        seed: int = 0,
        overrides: Mapping[str, Any] | None = None,
        judge_at_most: int | None = None,
    ) -> ChooseResult:
        """``target`` is one person's target or a group's: one road for both (a person is a group
        of one); a group's answer also carries each response's share. ``judge_at_most``: more
        responses than this are judged in consecutive groups of at most that many (a rerank of
        many documents), which needs a method that predicts attribute values."""
        check_seed(seed)
        probe = make_probe(question, responses)
        target = as_target(target, self.registry)
        method = self._method(overrides)
        is_group = isinstance(target, GroupTarget)
        if is_group and method.target_dependent:
            raise InputError(
                f"method {method.name} judges for one target at a time; a group needs a method that "
                "predicts attribute values (spm, spm-zeroshot, regression, embedding)"
            )
        person = target if isinstance(target, AlignmentTarget) and method.target_dependent else None
        assessment = self._calibrated(self._assess(method, probe, target, person, seed, judge_at_most))
        if is_group and assessment.predictions is None:
            raise InputError(
                f"method {method.name} predicts no attribute values, so it cannot tell what a group's members "
                "would choose; use spm, spm-zeroshot, regression or embedding"
            )
        choice = method.choose(assessment, target, self.metric, self.ties, self.selection)
        explanation = None
        if assessment.predictions is not None:
            explanation = explain(
                assessment.predictions, target, choice, assessment.draws, assessment.level_probs, self.metric, self.ties
            )
        return ChooseResult(
            selected_index=choice.index,
            selected_response=probe.responses[choice.index],
            reasoning=choice.reasoning,
            predictions=assessment.predictions,
            reasonings=assessment.reasonings,
            distances=choice.distances,
            tied=choice.tied,
            target=target_values(target),
            weights=dict(target.weights) if isinstance(target, AlignmentTarget) and target.weights else None,
            method=method.name,
            explanation=explanation,
            confidence=explanation.confidence if explanation else None,
            near_tie=explanation.near_tie if explanation else False,
            samples=assessment.samples,
            llm_calls=assessment.stats.calls,
            cached_calls=assessment.stats.cached,
            prompt_tokens=assessment.stats.prompt_tokens,
            completion_tokens=assessment.stats.completion_tokens,
            shares=choice.shares if is_group else None,
            group=target.name if is_group else None,
            members=len(target.members) if isinstance(target, GroupTarget) else None,
        )

    def _calibrated(self, assessment: Assessment) -> Assessment:
        """The assessment through ``--calibration``, if one was given (checked against the judge
        when this chooser was made; an attribute it has no map for is refused)."""
        return self.calibration.apply(assessment) if self.calibration is not None else assessment

    def _assess(
        self,
        method: Method,
        probe: Probe,
        target: Target,
        person: AlignmentTarget | None,
        seed: int,
        judge_at_most: int | None,
    ) -> Assessment:
        attributes = self.registry.require(target.attributes)
        n = len(probe.responses)
        if judge_at_most is None or n <= judge_at_most:
            return method.assess(probe, attributes, person, seed=seed)
        if method.target_dependent:
            raise InputError(
                f"method {method.name} picks one of at most {judge_at_most} responses; more need a method that "
                "predicts attribute values (spm, spm-zeroshot, regression, embedding)"
            )
        groups = [list(probe.responses[i : i + judge_at_most]) for i in range(0, n, judge_at_most)]
        if len(groups[-1]) == 1:  # a group of one cannot be compared: it joins the one before
            groups[-2:] = [groups[-2][:-1], [groups[-2][-1], *groups[-1]]]
        parts = [method.assess(make_probe(probe.question, g), attributes, None, seed=seed) for g in groups]
        if any(p.predictions is None for p in parts):
            raise InputError(f"method {method.name} predicts no attribute values; it judges at most {judge_at_most}")
        return Assessment.side_by_side(parts)

    async def achoose(
        self,
        question: Any,
        responses: Any,
        target: TargetLike,
        seed: int = 0,
        overrides: Mapping[str, Any] | None = None,
    ) -> ChooseResult:
        """:meth:`choose` for asyncio code: the judging runs on this chooser's own worker thread
        (one decision at a time, as a loaded model allows), never on the event loop."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pluralign-chooser")
        work = partial(self.choose, question, responses, target, seed, overrides)
        return await asyncio.get_running_loop().run_in_executor(self._worker, work)

    async def ready(self) -> str | None:
        """None when the method's judge can answer now; else why not."""
        return await self.method.ready()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)
        self.method.close()


def choose(
    question: str,
    responses: Sequence[str],
    target: TargetLike,
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


async def achoose(
    question: str,
    responses: Sequence[str],
    target: TargetLike,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    **settings: Any,
) -> ChooseResult:
    """:func:`choose` for asyncio code: loading and judging run on a worker thread, so the event
    loop keeps serving while the judge works (for many decisions, keep a :class:`Chooser` and
    await :meth:`Chooser.achoose`)."""
    return await asyncio.to_thread(choose, question, responses, target, method, seed, **settings)


def fill_predictions(records: Sequence[Any], chooser: Chooser | None, attributes: Sequence[str]) -> list[Any]:
    """Profile records (:class:`pluralign.people.profile.ChoiceRecord`) with predictions for every
    attribute: records without predictions are scored by the chooser's method (cached as
    usual); predictions that lack an attribute are an error, never filled in."""
    from pluralign.people.profile import check_predictions

    check_predictions([r for r in records if r.predictions is not None], attributes)
    out = []
    for record in records:
        if record.predictions is not None:
            out.append(record)
            continue
        if chooser is None:
            raise InputError(f"record {record.id!r} has no predictions for {', '.join(attributes)}")
        assessment = chooser.predict(record.question, record.responses, attributes)
        if assessment.predictions is None:
            raise InputError(f"method {chooser.method.name} predicts no attribute values; use spm or embedding")
        out.append(record.model_copy(update={"predictions": assessment.predictions}))
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
    target: TargetLike,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    generator: Any = None,
    **settings: Any,
) -> RespondResult:
    """Generate candidates (``generator``: :class:`pluralign.prediction.generators.GeneratorOptions`; the
    local model by default), then choose the one that fits ``target``."""
    from pluralign.prediction.generators import Draw, GeneratorOptions
    from pluralign.prediction.judges.base import ChatMessage

    question = check_question(question)
    options = generator or GeneratorOptions()
    chosen_settings = make_settings(settings)
    maker = build_generator(options, chosen_settings)
    draw = Draw(
        k=options.candidates,
        temperature=options.generator_temperature,
        max_tokens=options.generator_max_tokens,
        seed=seed,
    )
    try:
        made = maker.generate_sync([ChatMessage(role="user", content=question)], draw)
        chooser = Chooser(method, chosen_settings)  # the judge's model is the generator's, loaded once
        try:
            result = chooser.choose(question, made.texts, target, seed=seed)
        finally:
            chooser.close()
    finally:
        maker.close()
    return RespondResult(
        response=made.texts[result.selected_index],
        selected_index=result.selected_index,
        candidates=made.texts,
        choice=result,
        generator_model=made.model,
        generation_tokens=made.usage.prompt_tokens + made.usage.completion_tokens,
    )
