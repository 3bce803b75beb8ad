"""Choosing the response whose predicted attribute values are closest to the target.

One road for a person and a group (a person is a group of one): every member "chooses" the
responses closest to their own profile (several when they tie), splitting their weight equally
among them, so no response gains from sitting first; a response's **share** is the weighted
fraction of the group that chooses it, and the choice is the response with the largest share,
equal shares (within 1e-9: sums of weights, whose last bits mean nothing) going to the lowest
index. For one person this is the paper's rule exactly: the closest response, the first on a tie,
with the same distances bit for bit.

Knows nothing of LLMs: it takes predicted (or true) values and a target.

Ties follow the paper's code by default (``TieRule.exact``): distances are compared
exactly, the choice is the first strict minimum, and an item is "all tied" only when every
distance is exactly equal. ``TieRule.tolerant`` treats distances within ``TIE_TOLERANCE``
as equal, which is what the mathematics says for levels such as 0.17 and 0.33 whose sums
differ in the last bits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from pluralign.choice.targets import AlignmentTarget, GroupTarget, Target, as_group
from pluralign.support.errors import InputError

E = TypeVar("E", bound=StrEnum)

TIE_TOLERANCE = 1e-9
SHARE_TOLERANCE = 1e-9


class Metric(StrEnum):
    """``euclidean`` is the paper's distance (weights ignored); ``weighted`` scales each
    squared difference by the target's weight; ``l1`` sums absolute differences; ``auto``
    (the default) is ``weighted`` for a target with weights and ``euclidean`` otherwise,
    so a fitted profile's weights count and the paper's targets are scored as the paper."""

    auto = "auto"
    euclidean = "euclidean"
    weighted = "weighted"
    l1 = "l1"


class TieRule(StrEnum):
    exact = "exact"
    tolerant = "tolerant"


class Selection(StrEnum):
    """``closest`` (the paper's): the distance of each response's predicted values to the target.
    ``expected``: the expected distance under the judge's probability of each label level (for
    ``euclidean`` and ``weighted``, the root of the expected squared distance; for ``l1``, the
    expected absolute distance), so a response the judge is unsure about pays for its spread. The
    two agree wherever the judge is certain (one level with probability 1) or gave no levels."""

    closest = "closest"
    expected = "expected"


Levels = Sequence[Mapping[str, Mapping[str, float]]]
"""Per response, attribute -> {label level as text: probability} (what single-pass scoring gives)."""


@dataclass(frozen=True)
class Choice:
    """The chosen index, every response's distance (a group's: the members' weighted mean), the
    indexes that tied for best, and each response's share of the target's weight with each
    member's own closest responses (``picks``; for a person, one member).

    Ties go to the lowest index (as the reference does); ``tied`` records that the choice
    was positional rather than hiding it.
    """

    index: int
    distances: list[float]
    tied: list[int] = field(default_factory=list)
    reasoning: str = ""
    shares: list[float] | None = None
    picks: list[list[int]] | None = None

    @property
    def is_tie(self) -> bool:
        return len(self.tied) > 1


def _member(kind: type[E], value: str | E, what: str) -> E:
    """``value`` as a member of the option's enum, or one line naming the values it may take."""
    try:
        return kind(value)
    except ValueError:
        names = [m.value for m in kind]
        raise InputError(f"unknown {what} {value!r} (use {', '.join(names[:-1])} or {names[-1]})") from None


def parse_metric(value: str | Metric) -> Metric:
    return _member(Metric, value, "metric")


def parse_selection(value: str | Selection) -> Selection:
    return _member(Selection, value, "selection")


def parse_ties(value: str | TieRule) -> TieRule:
    return _member(TieRule, value, "tie rule")


def distance(values: Sequence[float], target: AlignmentTarget, metric: Metric | str = Metric.auto) -> float:
    """Distance of one vector of attribute values (in the target's attribute order) to the target.

    Unweighted Euclidean is computed as the paper's ``np.linalg.norm(target - values)`` so
    that exact ties and near-ties come out bit for bit as in its scorer.
    """
    metric = parse_metric(metric)
    if len(values) != len(target.values):
        raise InputError(
            f"a vector of {len(values)} values is compared with a target of {len(target.values)} attributes"
        )
    import numpy as np  # loaded on the first distance, not by every CLI start

    wanted = np.array(list(target.values.values()), dtype=np.float64)
    diff = wanted - np.array(values, dtype=np.float64)
    if metric == Metric.auto:
        metric = Metric.weighted if target.weights else Metric.euclidean
    if metric == Metric.euclidean:
        return float(np.linalg.norm(diff))
    if metric == Metric.l1:
        return float(np.abs(diff).sum())
    w = np.array([target.weight(a) for a in target.values], dtype=np.float64)
    return float(np.sqrt((w * diff * diff).sum()))


def expected_distance(
    values: Sequence[float],
    levels: Mapping[str, Mapping[str, float]],
    target: AlignmentTarget,
    metric: Metric | str = Metric.auto,
) -> float:
    """The expected distance of one response to the target under its level probabilities (an
    attribute without levels counts as certain at its value); the plain distance when every
    attribute is certain, bit for bit."""
    spreads = [levels.get(a) or {f"{v:g}": 1.0} for a, v in zip(target.values, values, strict=True)]
    if all(len(d) == 1 for d in spreads):
        return distance(values, target, metric)
    metric = parse_metric(metric)
    if metric == Metric.auto:
        metric = Metric.weighted if target.weights else Metric.euclidean
    total = 0.0
    for (attribute, wanted), dist in zip(target.values.items(), spreads, strict=True):
        mass = sum(dist.values())
        if metric == Metric.l1:
            total += sum(p * abs(float(level) - wanted) for level, p in dist.items()) / mass
            continue
        weight = target.weight(attribute) if metric == Metric.weighted else 1.0
        total += weight * sum(p * (float(level) - wanted) ** 2 for level, p in dist.items()) / mass
    return total if metric == Metric.l1 else total**0.5


def target_vector(values: Mapping[str, float], target: AlignmentTarget, what: str = "prediction") -> list[float]:
    """The values of the target's attributes, in the target's order (what distances compare)."""
    missing = [a for a in target.values if a not in values]
    if missing:
        raise InputError(f"{what} has no value for {', '.join(missing)} (target {target.name})")
    return [float(values[a]) for a in target.values]


def closest(dists: Sequence[float], ties: TieRule | str = TieRule.exact) -> list[int]:
    """Indexes of the closest responses, lowest first."""
    best = min(dists)
    if TieRule(ties) == TieRule.exact:
        return [i for i, d in enumerate(dists) if d == best]
    return [i for i, d in enumerate(dists) if d - best <= TIE_TOLERANCE]


def member_picks(
    predictions: Sequence[Mapping[str, float]],
    group: GroupTarget,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
    what: str = "prediction",
    levels: Levels | None = None,
) -> tuple[list[list[int]], list[list[float]]]:
    """Each member's closest responses (several when they tie) and distances (expected ones
    under ``levels`` when given)."""
    picks, dists = [], []
    for member in group.members:
        vectors = [target_vector(p, member.target, what) for p in predictions]
        if levels is None:
            row = [distance(v, member.target, metric) for v in vectors]
        else:
            row = [expected_distance(v, lv, member.target, metric) for v, lv in zip(vectors, levels, strict=True)]
        picks.append(closest(row, ties))
        dists.append(row)
    return picks, dists


def shares_of(picks: Sequence[Sequence[int]], group: GroupTarget, n: int) -> list[float]:
    """Each response's share of the group's weight: a member who ties splits their weight."""
    weights = group.scaled_weights
    total = sum(weights)
    out = [0.0] * n
    for weight, best in zip(weights, picks, strict=True):
        for i in best:
            out[i] += weight / len(best) / total
    return out


def top_shares(shares: Sequence[float]) -> list[int]:
    best = max(shares)
    return [i for i, s in enumerate(shares) if best - s <= SHARE_TOLERANCE]


def select(
    predictions: Sequence[Mapping[str, float]],
    target: Target,
    metric: Metric | str = Metric.auto,
    reasonings: Sequence[str] | None = None,
    ties: TieRule | str = TieRule.exact,
    levels: Levels | None = None,
) -> Choice:
    """Pick the response the target would choose (a person: the closest; a group: the largest
    share); predictions are one mapping per response; with ``levels`` (per response), by the
    expected distance (:class:`Selection`)."""
    if len(predictions) < 2:
        raise InputError("selection needs at least 2 responses")
    if levels is not None and len(levels) != len(predictions):
        raise InputError(f"{len(levels)} level distributions for {len(predictions)} responses")
    group = as_group(target)
    picks, dists = member_picks(predictions, group, metric, ties, levels=levels)
    shares = shares_of(picks, group, len(predictions))
    best = top_shares(shares)
    weights = group.scaled_weights
    total = sum(weights)
    mean = [
        float(sum(w * row[i] for w, row in zip(weights, dists, strict=True)) / total) for i in range(len(predictions))
    ]
    index = best[0]
    reasoning = reasonings[index] if reasonings else ""
    return Choice(
        index=index,
        distances=mean,
        tied=best if len(best) > 1 else [],
        reasoning=reasoning,
        shares=shares,
        picks=picks,
    )
