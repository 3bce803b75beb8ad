"""What every method shares: a target-independent assessment, then a target-dependent choice."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.selection import Choice, Metric, Selection, TieRule, parse_selection, select
from pluralign.choice.targets import AlignmentTarget, Target
from pluralign.support.errors import InputError
from pluralign.support.strict import Number


class CallStats(BaseModel):
    """LLM work behind one assessment: requests, model calls made for them (re-asks included),
    requests answered by the cache, tokens, time."""

    requests: int = 0
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0

    def add(self, other: CallStats) -> None:
        self.requests += other.requests
        self.calls += other.calls
        self.cached += other.cached
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.llm_seconds += other.llm_seconds


class Assessment(BaseModel):
    """A method's output for one probe.

    Regression-style methods fill ``predictions`` (attribute values per response), which
    do not depend on the target; choice-style methods fill ``choice`` directly.
    ``draws`` keeps, per attribute, each sample's values per response (on [0, 1]) and
    ``level_probs`` each response's probability per label level (single-pass scoring):
    what a choice's confidence is computed from.
    """

    predictions: list[dict[str, Number]] | None = None
    reasonings: list[dict[str, str]] | None = None
    choice: int | None = None
    choice_reasoning: str = ""
    samples: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    draws: dict[str, list[list[float]]] | None = None
    level_probs: dict[str, list[dict[str, float]]] | None = None
    stats: CallStats = Field(default_factory=CallStats)

    def merged(self, new: Assessment) -> Assessment:
        """This assessment with another's attributes added (a resumed item, new attributes)."""

        def join(a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
            if a is None or b is None:
                return None
            return [{**x, **y} for x, y in zip(a, b, strict=True)]

        stats = self.stats.model_copy()
        stats.add(new.stats)
        return Assessment(
            predictions=join(self.predictions, new.predictions),  # type: ignore[arg-type]
            reasonings=join(self.reasonings, new.reasonings),  # type: ignore[arg-type]
            choice=new.choice if new.choice is not None else self.choice,
            choice_reasoning=new.choice_reasoning or self.choice_reasoning,
            samples={**self.samples, **new.samples},
            draws={**(self.draws or {}), **(new.draws or {})} or None,
            level_probs={**(self.level_probs or {}), **(new.level_probs or {})} or None,
            stats=stats,
        )

    @classmethod
    def side_by_side(cls, parts: Sequence[Assessment]) -> Assessment:
        """The assessments of consecutive groups of one probe's responses as one (the responses of
        the first group, then the second's...): predictions, reasonings and each response's level
        probabilities joined; the samples' draws, which differ in number between groups, dropped."""
        if any(p.predictions is None for p in parts):
            raise ValueError("only assessments with predictions can be joined")
        stats = CallStats()
        for p in parts:
            stats.add(p.stats)
        reasonings = None
        if all(p.reasonings is not None for p in parts):
            reasonings = [r for p in parts for r in p.reasonings or []]
        levels = None
        if all(p.level_probs for p in parts):
            levels = {a: [d for p in parts for d in (p.level_probs or {})[a]] for a in parts[0].level_probs or {}}
        return cls(
            predictions=[x for p in parts for x in p.predictions or []],
            reasonings=reasonings,
            level_probs=levels,
            stats=stats,
        )

    def missing(self, attributes: Sequence[Attribute]) -> list[Attribute]:
        """The attributes this assessment has no prediction for (none for a direct choice)."""
        if self.choice is not None:
            return []
        if self.predictions is None:
            return list(attributes)
        have = self.predictions[0].keys()
        return [a for a in attributes if a.name not in have]


class Method(ABC):
    """A way of judging probes. ``target_dependent`` methods need the target to judge."""

    name: str = "method"
    target_dependent: bool = False

    def config(self) -> dict[str, Any]:
        """Everything that changes the assessment (used for run identity and caching)."""
        return {"method": self.name}

    async def ready(self) -> str | None:
        """None when the method can assess now; else why not (its judge is unreachable)."""
        return None

    def items_at_once(self) -> int:
        """How many items an evaluation judges at once by default: enough to keep its judge as
        busy as it may be (1 for an in-process judge or none)."""
        return 1

    @abstractmethod
    def assess(
        self,
        probe: Probe,
        attributes: Sequence[Attribute],
        target: AlignmentTarget | None = None,
        seed: int = 0,
    ) -> Assessment:
        """The method's assessment of ``probe`` on ``attributes`` (``target`` only for
        target-dependent methods)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A method written for 0.2 defines ``judge()``: it keeps working as ``assess()``."""
        super().__init_subclass__(**kwargs)
        if "judge" in cls.__dict__ and "assess" not in cls.__dict__:
            warnings.warn(
                f"{cls.__name__}.judge() is now assess(); the old name works until pluralign 0.4",
                DeprecationWarning,
                stacklevel=2,
            )
            cls.assess = cls.__dict__["judge"]  # type: ignore[method-assign]

    def judge(self, *args: Any, **kwargs: Any) -> Assessment:
        """0.2's name of :meth:`assess` (until 0.4)."""
        warnings.warn("Method.judge() is now assess()", DeprecationWarning, stacklevel=2)
        return self.assess(*args, **kwargs)

    def choose(
        self,
        assessment: Assessment,
        target: Target,
        metric: Metric | str = Metric.auto,
        ties: TieRule | str = TieRule.exact,
        selection: Selection | str = Selection.closest,
    ) -> Choice:
        """The response ``target`` (a person or a group) would choose from this assessment."""
        return choose_from(assessment, target, metric, ties, selection, self.name)

    def close(self) -> None:  # noqa: B027 - optional hook, most methods hold nothing
        """Release models or connections."""


def levels_of(assessment: Assessment, n: int) -> list[dict[str, dict[str, float]]]:
    """Per response, attribute -> {level: probability}, from the assessment's level probabilities."""
    probs = assessment.level_probs or {}
    return [{a: dict(rows[i]) for a, rows in probs.items() if i < len(rows)} for i in range(n)]


def choose_from(
    assessment: Assessment,
    target: Target,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
    selection: Selection | str = Selection.closest,
    method: str = "method",
) -> Choice:
    """The response ``target`` would choose from a assessment: its direct choice, or selection
    over its predictions (by the expected distance under its level probabilities when
    ``selection`` is ``expected``)."""
    if assessment.choice is not None:
        return Choice(index=assessment.choice, distances=[], reasoning=assessment.choice_reasoning)
    if assessment.predictions is None:
        raise InputError(f"method {method} produced neither predictions nor a choice")
    reasons = None
    if assessment.reasonings is not None:
        reasons = [" ".join(r[a] for a in target.attributes if r.get(a)) for r in assessment.reasonings]
    levels = None
    if parse_selection(selection) == Selection.expected and assessment.level_probs:
        levels = levels_of(assessment, len(assessment.predictions))
    return select(assessment.predictions, target, metric, reasonings=reasons, ties=ties, levels=levels)


def __getattr__(name: str) -> Any:
    """0.2's ``Judgement`` is :class:`Assessment` (with a warning, until 0.4)."""
    if name == "Judgement":
        warnings.warn("Judgement is now Assessment", DeprecationWarning, stacklevel=2)
        return Assessment
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
