"""Why a response was chosen, and how sure the choice is.

* :func:`lead` splits the chosen response's lead over the runner-up into each
  attribute's share (of the difference in squared distance, which adds up over attributes)
  and says it in one sentence.
* :func:`confidence` asks how often the same response would be chosen from the judge's
  other possible answers: the N samples resampled with replacement (sampling mode), or
  scores drawn from the judge's token probabilities (single-pass mode).

A group's choice is explained by how divided the group is (:func:`explain_group`), with the
same confidence measure. Knows nothing of LLMs: it reads predictions, draws and a target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from pluralign.choice.selection import (
    SHARE_TOLERANCE,
    Choice,
    Metric,
    TieRule,
    closest,
    distance,
    parse_metric,
    target_vector,
    top_shares,
)
from pluralign.choice.targets import AlignmentTarget, GroupTarget, Target, as_group, one_person

NEAR_TIE_CONFIDENCE = 0.6
NEAR_TIE_GAP = 0.02
RESAMPLES = 400


class AttributeShare(BaseModel):
    attribute: str
    chosen: float
    runner_up: float
    target: float
    share: float


class Explanation(BaseModel):
    chosen: int
    runner_up: int | None
    shares: list[AttributeShare]
    sentence: str
    confidence: float | None = None
    near_tie: bool = False
    confidence_note: str = ""


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def attribute_shares(
    chosen: Mapping[str, float], other: Mapping[str, float], target: AlignmentTarget, metric: Metric | str
) -> list[AttributeShare]:
    """Each attribute's share of ``other``'s extra distance over ``chosen`` (shares sum to 1;
    a negative share is an attribute on which the chosen response is further away)."""
    metric = parse_metric(metric)
    if metric == Metric.auto:
        metric = Metric.weighted if target.weights else Metric.euclidean
    contributions = {}
    for a, wanted in target.values.items():
        w = target.weight(a) if metric == Metric.weighted else 1.0
        if metric == Metric.l1:
            contributions[a] = w * (abs(other[a] - wanted) - abs(chosen[a] - wanted))
        else:
            contributions[a] = w * ((other[a] - wanted) ** 2 - (chosen[a] - wanted) ** 2)
    total = sum(contributions.values())
    shares = [
        AttributeShare(
            attribute=a,
            chosen=float(chosen[a]),
            runner_up=float(other[a]),
            target=float(target.values[a]),
            share=float(c / total) if total > 0 else 0.0,
        )
        for a, c in contributions.items()
    ]
    return sorted(shares, key=lambda s: -s.share)


def lead(
    predictions: Sequence[Mapping[str, float]],
    choice: Choice,
    target: AlignmentTarget,
    metric: Metric | str = Metric.auto,
) -> Explanation:
    """The chosen response against the runner-up (the next closest), in numbers and words."""
    n = len(predictions)
    if not choice.distances or n < 2:
        return Explanation(chosen=choice.index, runner_up=None, shares=[], sentence="")
    others = sorted((d, i) for i, d in enumerate(choice.distances) if i != choice.index)
    gap, runner = others[0][0] - choice.distances[choice.index], others[0][1]
    if choice.is_tie or gap <= 0:
        tied = choice.tied or [choice.index, runner]
        listed = ", ".join(str(i) for i in tied[:-1]) + f" and {tied[-1]}"
        sentence = f"Responses {listed} are equally close to the target; the first was taken."
        return Explanation(chosen=choice.index, runner_up=runner, shares=[], sentence=sentence, near_tie=True)
    shares = attribute_shares(predictions[choice.index], predictions[runner], target, metric)

    def part(s: AttributeShare) -> str:
        return f"{s.attribute}: {_fmt(s.chosen)} against {_fmt(s.runner_up)}, target {_fmt(s.target)}"

    top = shares[0]
    if top.share >= 0.6 or len(shares) == 1:
        why = f"mostly for {part(top)}"
    else:
        main = [s for s in shares if s.share > 0.15][:3] or [top]
        why = "for " + "; ".join(part(s) for s in main)
    return Explanation(
        chosen=choice.index,
        runner_up=runner,
        shares=shares,
        sentence=f"Chosen over response {runner} {why}.",
    )


def _pick(values: np.ndarray, target: AlignmentTarget, metric: Metric | str, ties: TieRule | str) -> int:
    dists = [distance(list(values[i]), target, metric) for i in range(values.shape[0])]
    return closest(dists, ties)[0]


def confidence(
    draws: Mapping[str, Sequence[Sequence[float]]] | None,
    level_probs: Mapping[str, Sequence[Mapping[str, float]]] | None,
    target: AlignmentTarget,
    chosen: int,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float | None, str]:
    """Share of plausible re-judgements that choose ``chosen``, and a note on how it was found."""

    def pick(values: np.ndarray) -> int:
        return _pick(values, target, metric, ties)

    return agreement(draws, level_probs, list(target.values), pick, chosen, resamples, seed)


def agreement(
    draws: Mapping[str, Sequence[Sequence[float]]] | None,
    level_probs: Mapping[str, Sequence[Mapping[str, float]]] | None,
    attrs: Sequence[str],
    pick: Callable[[np.ndarray], int],
    chosen: int,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float | None, str]:
    """How often ``pick`` (values: responses x ``attrs`` -> index) lands on ``chosen`` over
    re-judgements: one person's selection, or a group's."""
    rng = np.random.default_rng(seed)
    if level_probs and all(a in level_probs for a in attrs):
        n = len(level_probs[attrs[0]])
        sampled = np.zeros((resamples, n, len(attrs)))
        for k, a in enumerate(attrs):
            for i, dist in enumerate(level_probs[a]):
                levels = np.array([float(v) for v in dist])
                probs = np.array(list(dist.values()), dtype=float)
                sampled[:, i, k] = rng.choice(levels, size=resamples, p=probs / probs.sum())
        same = sum(pick(sampled[b]) == chosen for b in range(resamples))
        return same / resamples, "scores drawn from the judge's token probabilities"
    if not draws or not all(a in draws for a in attrs):
        return None, "no samples to measure agreement"
    counts = {len(draws[a]) for a in attrs}
    if max(counts) < 2:
        return None, "one sample per attribute: no spread to measure (use --samples 3 or more)"
    arrays = {a: np.asarray(draws[a], dtype=float) for a in attrs}  # samples x responses
    n = arrays[attrs[0]].shape[1]
    same = 0
    for _ in range(resamples):
        values = np.zeros((n, len(attrs)))
        for k, a in enumerate(attrs):
            rows = rng.integers(0, arrays[a].shape[0], size=arrays[a].shape[0])
            values[:, k] = arrays[a][rows].mean(axis=0)
        same += pick(values) == chosen
    return same / resamples, f"the {max(counts)} samples resampled {resamples} times"


def explain_choice(
    predictions: Sequence[Mapping[str, float]],
    choice: Choice,
    target: AlignmentTarget,
    draws: Mapping[str, Sequence[Sequence[float]]] | None = None,
    level_probs: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
) -> Explanation:
    """:func:`lead` plus the :func:`confidence` of the choice, and whether it is a near tie."""
    for p in predictions:
        target_vector(p, target)
    out = lead(predictions, choice, target, metric)
    conf, note = confidence(draws, level_probs, target, choice.index, metric, ties)
    gap_small = False
    if out.runner_up is not None and choice.distances:
        gap_small = choice.distances[out.runner_up] - choice.distances[choice.index] < NEAR_TIE_GAP
    near = out.near_tie or gap_small or (conf is not None and conf < NEAR_TIE_CONFIDENCE)
    sentence = out.sentence
    if near and not out.near_tie:
        sentence += " This is a near tie: the judge could as well have chosen the other response."
    return out.model_copy(update={"confidence": conf, "confidence_note": note, "near_tie": near, "sentence": sentence})


# -- a group's choice ------------------------------------------------------------------------------

SPLIT_SHARE = 0.05
"""A response chosen by at most this share of the group is not named in the explanation."""


def group_picker(group: GroupTarget, attributes: Sequence[str], metric: Metric | str) -> Callable[[np.ndarray], int]:
    """The group's pick from a matrix of values (responses x ``attributes``), vectorised for
    the confidence's hundreds of re-judgements (near-equal distances count as ties)."""
    metric = parse_metric(metric)
    index = {a: k for k, a in enumerate(attributes)}
    wanted = np.zeros((len(group.members), len(attributes)))
    scale = np.zeros_like(wanted)
    for m, member in enumerate(group.members):
        weighted = metric == Metric.weighted or (metric == Metric.auto and member.target.weights)
        for a, v in member.target.values.items():
            wanted[m, index[a]] = v
            scale[m, index[a]] = member.target.weight(a) if weighted else 1.0
    weights = np.array(group.scaled_weights)

    def pick(values: np.ndarray) -> int:
        diff = wanted[:, None, :] - values[None, :, :]  # members x responses x attributes
        if metric == Metric.l1:
            d = (scale[:, None, :] * np.abs(diff)).sum(axis=2)
        else:
            d = np.sqrt((scale[:, None, :] * diff * diff).sum(axis=2))
        best = d <= d.min(axis=1, keepdims=True) + 1e-9
        split = best / best.sum(axis=1, keepdims=True)
        shares = (weights[:, None] * split).sum(axis=0)
        return int(top_shares(list(shares / shares.sum()))[0])

    return pick


def _pct(share: float) -> str:
    return f"{share:.0%}"


def divided_on(
    predictions: Sequence[Mapping[str, float]],
    group: GroupTarget,
    picks: Sequence[Sequence[int]],
    chosen: int,
    other: int,
    metric: Metric | str,
) -> str | None:
    """The attribute that most draws the members who choose ``other`` away from ``chosen``:
    each member's attribute shares of the chosen response's extra distance, weight-averaged."""
    totals: dict[str, float] = {}
    for weight, member, best in zip(group.scaled_weights, group.members, picks or [], strict=True):
        if other not in best:
            continue
        for s in attribute_shares(predictions[other], predictions[chosen], member.target, metric):
            totals[s.attribute] = totals.get(s.attribute, 0.0) + weight * s.share
    if not totals:
        return None
    name, value = max(totals.items(), key=lambda kv: kv[1])
    return name if value > 0 else None


def group_sentence(
    predictions: Sequence[Mapping[str, float]], group: GroupTarget, choice: Choice, metric: Metric | str
) -> str:
    """ "62% of the group prefers response 1; the rest prefer response 0 (for verbosity)." """
    shares = choice.shares or []
    if choice.is_tie:
        listed = ", ".join(str(i) for i in choice.tied[:-1]) + f" and {choice.tied[-1]}"
        each = _pct(shares[choice.index])
        return f"The group is split evenly between responses {listed} ({each} each); the first was taken."
    head = f"{_pct(shares[choice.index])} of the group prefers response {choice.index}"
    if shares[choice.index] >= 1 - SHARE_TOLERANCE:
        return f"The whole group ({len(group.members)} profiles) prefers response {choice.index}."
    others = sorted((i for i in range(len(shares)) if i != choice.index and shares[i] > 0), key=lambda i: -shares[i])
    parts: list[str] = []
    for i in others:
        if shares[i] <= SPLIT_SHARE and parts:
            break
        why = divided_on(predictions, group, choice.picks or [], choice.index, i, metric)
        parts.append(f"{_pct(shares[i])} response {i}" + (f" (for its {why})" if why else ""))
    rest = 1 - shares[choice.index] - sum(shares[i] for i in others[: len(parts)])
    tail = f", {_pct(rest)} others" if rest > SPLIT_SHARE / 2 else ""
    return f"{head}; " + ", ".join(parts) + tail + "."


NEAR_TIE_SHARE = 0.05


def explain_group(
    predictions: Sequence[Mapping[str, float]],
    group: GroupTarget,
    choice: Choice,
    draws: Mapping[str, Sequence[Sequence[float]]] | None = None,
    level_probs: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    metric: Metric | str = Metric.auto,
) -> Explanation:
    """How divided the group is, in one sentence, and how often re-judgements give the group
    the same choice (a near tie when the top two shares are within 5 points or that is rare)."""
    shares = choice.shares or []
    order = sorted(range(len(shares)), key=lambda i: (-shares[i], i))
    runner = next(i for i in order if i != choice.index)
    sentence = group_sentence(predictions, group, choice, metric)
    pick = group_picker(group, group.attributes, metric)
    conf, note = agreement(draws, level_probs, group.attributes, pick, choice.index)
    close = shares[choice.index] - shares[runner] < NEAR_TIE_SHARE
    near = choice.is_tie or close or (conf is not None and conf < NEAR_TIE_CONFIDENCE)
    if near and not choice.is_tie:
        sentence += " This is a near tie: a little change in the scores could give the group another response."
    return Explanation(
        chosen=choice.index,
        runner_up=runner,
        shares=[],
        sentence=sentence,
        confidence=conf,
        near_tie=near,
        confidence_note=note,
    )


def explain(
    predictions: Sequence[Mapping[str, float]],
    target: Target,
    choice: Choice,
    draws: Mapping[str, Sequence[Sequence[float]]] | None = None,
    level_probs: Mapping[str, Sequence[Mapping[str, float]]] | None = None,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
) -> Explanation:
    """Why ``choice`` was made for ``target``: for one person, the lead over the runner-up by
    attribute; for a group, how divided it is; with the confidence either way."""
    person = one_person(target)
    if person is not None:
        return explain_choice(predictions, choice, person, draws, level_probs, metric, ties)
    return explain_group(predictions, as_group(target), choice, draws, level_probs, metric)
