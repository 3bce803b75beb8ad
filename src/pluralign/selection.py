"""Choosing the response whose attribute profile is closest to the target.

Knows nothing of LLMs: it takes predicted (or true) values and a target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pluralign.errors import InputError
from pluralign.targets import AlignmentTarget

TIE_TOLERANCE = 1e-9


class Metric(StrEnum):
    euclidean = "euclidean"
    weighted = "weighted"
    l1 = "l1"


@dataclass(frozen=True)
class Choice:
    """The chosen index, every response's distance, and the indexes that tied for best.

    Ties go to the lowest index (as the reference does); ``tied`` records that the choice
    was positional rather than hiding it.
    """

    index: int
    distances: list[float]
    tied: list[int] = field(default_factory=list)
    reasoning: str = ""

    @property
    def is_tie(self) -> bool:
        return len(self.tied) > 1


def distance(values: Sequence[float], target: AlignmentTarget, metric: Metric | str = Metric.euclidean) -> float:
    goal = list(target.values.values())
    if metric == Metric.l1:
        return float(sum(abs(v - g) for v, g in zip(values, goal, strict=True)))
    if metric == Metric.weighted:
        weights = [target.weight(a) for a in target.values]
        return math.sqrt(sum(w * (v - g) ** 2 for w, v, g in zip(weights, values, goal, strict=True)))
    if metric == Metric.euclidean:
        return math.sqrt(sum((v - g) ** 2 for v, g in zip(values, goal, strict=True)))
    raise InputError(f"unknown distance {metric!r} (use euclidean, weighted or l1)")


def profile(values: Mapping[str, float], target: AlignmentTarget, what: str = "prediction") -> list[float]:
    missing = [a for a in target.values if a not in values]
    if missing:
        raise InputError(f"{what} has no value for {', '.join(missing)} (target {target.name})")
    return [float(values[a]) for a in target.values]


def closest(dists: Sequence[float]) -> list[int]:
    best = min(dists)
    return [i for i, d in enumerate(dists) if d - best <= TIE_TOLERANCE]


def select(
    predictions: Sequence[Mapping[str, float]],
    target: AlignmentTarget,
    metric: Metric | str = Metric.euclidean,
    reasonings: Sequence[str] | None = None,
) -> Choice:
    """Pick the response closest to the target; predictions are one mapping per response."""
    if len(predictions) < 2:
        raise InputError("selection needs at least 2 responses")
    dists = [distance(profile(p, target), target, metric) for p in predictions]
    best = closest(dists)
    index = best[0]
    reasoning = reasonings[index] if reasonings else ""
    return Choice(index=index, distances=dists, tied=best if len(best) > 1 else [], reasoning=reasoning)
