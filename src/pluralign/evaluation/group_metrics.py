"""Evaluation against a group target: the share of the group whose own choice a method matches.

Each member's own choice comes from the labels, exactly as one target's correctness does
(the responses truly closest to that member, the paper's exact tie rule). On one item, the
**matched share** is the weighted fraction of the group whose closest responses include the
method's pick. A member for whom every response is equally close is left out of that item
(as the paper skips an item on which every response ties); an item on which that holds for
every member is skipped. A run's figure is the mean matched share over scored items.

A divided group cannot be matched in full by any one response, so the result also carries
``best_share``: the mean, over the same items, of the largest share any response gets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from pluralign.choice.groups import GroupTarget
from pluralign.choice.selection import Metric, TieRule, closest
from pluralign.evaluation.metrics import bootstrap_ci, label_distances
from pluralign.support.errors import InputError
from pluralign.support.strict import Count, Number


class GroupDecision(BaseModel):
    """One item against one group: the pick, and each response's share of the group by labels."""

    item: int
    group: str
    chosen: Count | None
    label_shares: list[float]
    """Per response, the weight of the scored members whose own choice includes it, as a
    fraction of the scored weight (a member whose choice ties counts for each of its picks)."""
    scored_weight: float
    """The fraction of the group's weight left after members with all-tied labels are left out."""
    skipped: bool
    shares: list[float] | None = None
    """The method's predicted shares (methods with predictions)."""
    tied: list[int] = []
    labels: list[dict[str, Number]]
    predictions: list[dict[str, Number]] | None = None
    failed: str | None = None

    @property
    def matched(self) -> float | None:
        if self.skipped or self.chosen is None or self.failed is not None:
            return None
        return self.label_shares[self.chosen]


class GroupResult(BaseModel):
    name: str
    members: int
    mean_values: dict[str, float]
    matched_share: float | None
    """Mean over scored items of the matched share, in percent."""
    matched_share_ci95: tuple[float, float] | None = None
    best_share: float | None = None
    """Mean over the same items of the largest share any response gets, in percent."""
    n_scored: int
    n_skipped: int
    n_failed: int = 0


def grade_group_item(
    item: int,
    labels: Sequence[Mapping[str, float]],
    group: GroupTarget,
    chosen: int | None,
    metric: Metric | str = Metric.auto,
    predictions: Sequence[Mapping[str, float]] | None = None,
    shares: Sequence[float] | None = None,
    tied: Sequence[int] = (),
    failed: str | None = None,
) -> GroupDecision:
    if chosen is not None and not 0 <= chosen < len(labels):
        raise InputError(f"item {item}, group {group.name}: chosen index {chosen} is out of range 0..{len(labels) - 1}")
    matched = [0.0] * len(labels)
    scored = 0.0
    for weight, member in zip(group.scaled_weights, group.members, strict=True):
        best = closest(label_distances(labels, member.target, metric, item), TieRule.exact)
        if len(best) == len(labels):
            continue
        scored += weight
        for i in best:
            matched[i] += weight
    return GroupDecision(
        item=item,
        group=group.name,
        chosen=chosen,
        label_shares=[m / scored for m in matched] if scored > 0 else [0.0] * len(labels),
        scored_weight=scored / sum(group.scaled_weights),
        skipped=scored == 0,
        shares=list(shares) if shares is not None else None,
        tied=list(tied),
        labels=[dict(lab) for lab in labels],
        predictions=[dict(p) for p in predictions] if predictions is not None else None,
        failed=failed,
    )


def summarize_group(decisions: Sequence[GroupDecision], group: GroupTarget) -> GroupResult:
    matched = [d.matched for d in decisions]
    scored = [m for m in matched if m is not None]
    best = [max(d.label_shares) for d, m in zip(decisions, matched, strict=True) if m is not None]
    failed = sum(1 for d in decisions if d.failed is not None or d.chosen is None)
    return GroupResult(
        name=group.name,
        members=len(group.members),
        mean_values=group.mean_values(),
        matched_share=100.0 * float(np.mean(scored)) if scored else None,
        matched_share_ci95=bootstrap_ci(scored),
        best_share=100.0 * float(np.mean(best)) if best else None,
        n_scored=len(scored),
        n_skipped=len(decisions) - len(scored) - failed,
        n_failed=failed,
    )
