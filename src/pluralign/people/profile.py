"""Learn a person's alignment target from the choices they made, and pick the question
whose answer would tell the most about them.

Model. A profile says which attributes the person cares about and the value they want
for each (one of the attribute's label levels). Given a profile, the person chooses among
the responses like a noisy version of the paper's selection rule:

    P(choose r | profile) = eps / R + (1 - eps) * softmax_r(-beta * d_r^2)

where ``d_r`` is the distance of response ``r``'s predicted values to the profile over the
attributes it contains. ``eps`` absorbs plain mistakes (a flipped choice), ``beta`` makes
near-ties nearly uninformative. Every profile of the grid gets a posterior from a prior that
is uniform over the number of attributes and then, within each number, over the profiles
with that number, except that every attribute set to the middle of its scale (0.5) weighs
``MIDDLE_PRIOR`` against 1 for the other levels. The grid offers, per attribute, "absent" or
any of its label levels: a person who wants medium complexity is a profile of the grid (the
paper's sampled targets leave 0.5 out, and an earlier grid did too, so such people could not
be recovered). The lower weight keeps the extra level from taking mass off the others: with
2 responses a middle value is often the closest only by a little, and at full weight "wants
the middle" would explain away many clear picks (bench/profile_fit.py, docs/results.md).

"No preference" (``"chosen": null`` in a choices line) is evidence that the responses are
about equally close to the person's target: its likelihood under a profile is
``eps + (1 - eps) * exp(-beta * gap)``, where ``gap`` is the difference of the two smallest
squared distances, so it favours profiles under which they tie or nearly tie.

``BETA`` and ``EPSILON`` were chosen on 20 HelpSteer2 targets that are not among the 50 the
benchmark reports (bench/profile_fit.py --tune; docs/results.md).

Fit. The written target is the centre of the posterior: per attribute, the probability
that it is present becomes its weight, and its value is the posterior mean given present.
Attributes present with probability under ``MIN_WEIGHT`` are left out.

Ask: :mod:`pluralign.people.questions` picks the question whose answer would tell the most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, StrictStr, ValidationError

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Responses, Text
from pluralign.choice.selection import select
from pluralign.choice.targets import AlignmentTarget
from pluralign.support import deadline
from pluralign.support.errors import InputError, validation_message
from pluralign.support.jsonl import scan_jsonl
from pluralign.support.strict import Count, Number

EPSILON = 0.05
BETA = 300.0
MIDDLE_PRIOR = 0.5
"""Prior weight of an attribute at 0.5 against 1 for its other levels (normalised within each
number of attributes)."""
MIN_WEIGHT = 0.05
MAX_PROFILES = 2_000_000
ASK_TOP_PROFILES = 20_000
ASK_MIN_MASS = 1e-9
"""Profiles whose posterior is under this share of the largest are left out of the next question."""
ASK_EVAL_ITEMS = 500
"""Pool items the expected agreement is measured on (evenly spaced when the pool is larger): the
work is profiles x candidates x these, so a larger pool costs linearly, not quadratically."""
CHUNK_CELLS = 2_000_000
"""Profiles x responses evaluated at once when choosing the next question (bounds memory)."""


class ChoiceRecord(BaseModel):
    """One line of a choices file (``chosen`` absent in a pool; ``"chosen": null``: no preference)."""

    id: StrictStr
    question: Text
    responses: Responses
    chosen: Count | None = None
    predictions: list[dict[str, Number]] | None = None

    @property
    def no_preference(self) -> bool:
        """The person said neither response is better (``chosen`` given as null)."""
        return self.chosen is None and "chosen" in self.model_fields_set

    @property
    def answered(self) -> bool:
        return self.chosen is not None or self.no_preference

    def check(self) -> ChoiceRecord:
        if self.chosen is not None and not 0 <= self.chosen < len(self.responses):
            raise ValueError(f"chosen {self.chosen} is out of range 0..{len(self.responses) - 1}")
        if self.predictions is not None:
            if len(self.predictions) != len(self.responses):
                raise ValueError(f"{len(self.predictions)} predictions for {len(self.responses)} responses")
            for p in self.predictions:
                for a, v in p.items():
                    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0):
                        raise ValueError(f"prediction {a}={v} is outside [0, 1]")
        return self


def read_choices(path: str | Path, need_chosen: bool = True, what: str = "choices file") -> list[ChoiceRecord]:
    """Records of a JSON Lines file, or an InputError naming the line and the field."""
    records: list[ChoiceRecord] = []
    seen: set[str] = set()
    read = scan_jsonl(path, "strict", what)
    for number, raw in zip(read.lines, read.records, strict=True):
        if not isinstance(raw, dict):
            raise InputError(f"{path}: line {number} is not a JSON object")
        try:
            record = ChoiceRecord.model_validate(raw).check()
        except ValidationError as exc:
            raise InputError(f"{path}: line {number}: {validation_message(exc)}") from None
        except ValueError as exc:
            raise InputError(f"{path}: line {number}: {exc}") from None
        if need_chosen and not record.answered:
            raise InputError(f"{path}: line {number}: no 'chosen' (an index, or null for no preference)")
        if record.id in seen:
            raise InputError(f"{path}: line {number}: id {record.id!r} appears twice")
        seen.add(record.id)
        records.append(record)
    return records


def attributes_of(records: Sequence[ChoiceRecord]) -> list[str]:
    """Attributes every record's predictions have, in first-seen order."""
    names: list[str] | None = None
    for r in records:
        for p in r.predictions or []:
            names = [a for a in p] if names is None else [a for a in names if a in p]
    return names or []


def check_predictions(records: Sequence[ChoiceRecord], attributes: Sequence[str], path: str = "") -> None:
    for r in records:
        if r.predictions is None:
            raise InputError(f"{path}{': ' if path else ''}record {r.id!r} has no predictions")
        for i, p in enumerate(r.predictions):
            missing = [a for a in attributes if a not in p]
            if missing:
                raise InputError(
                    f"{path}{': ' if path else ''}record {r.id!r}, response {i}: predictions lack {', '.join(missing)}"
                )


def grid_size(attributes: Sequence[Attribute]) -> int:
    """How many candidate profiles :class:`Grid` would hold (known before building it)."""
    return math.prod(len(a.level_values()) + 1 for a in attributes) - 1


def work_units(attributes: Sequence[Attribute], records: Sequence[ChoiceRecord]) -> int:
    """What a fit or a next question costs: profiles x responses looked at. The service
    bounds it (``--max-profile-work``) so one request cannot hold the CPU for minutes."""
    return grid_size(attributes) * sum(len(r.responses) for r in records)


@dataclass
class Grid:
    """Every profile: ``present`` (profiles x attributes, 0/1) and ``values``."""

    attributes: list[str]
    present: np.ndarray
    values: np.ndarray
    log_prior: np.ndarray

    @classmethod
    def build(cls, attributes: Sequence[Attribute]) -> Grid:
        levels = [np.array(a.level_values(), dtype=np.float64) for a in attributes]
        sizes = [len(lv) + 1 for lv in levels]  # option 0 = absent
        size = math.prod(sizes)
        if size > MAX_PROFILES:
            raise InputError(
                f"{size} candidate profiles over {len(attributes)} attributes is too many; name fewer with --attributes"
            )
        codes = np.indices(sizes).reshape(len(sizes), -1).T  # profiles x attributes
        codes = codes[(codes > 0).any(axis=1)]
        present = (codes > 0).astype(np.float64)
        values = np.zeros(codes.shape, dtype=np.float64)
        for k, lv in enumerate(levels):
            values[:, k] = np.where(codes[:, k] > 0, lv[np.maximum(codes[:, k] - 1, 0)], 0.0)
        n_present = present.sum(axis=1).astype(int)
        middles = ((present > 0) & np.isclose(values, 0.5)).sum(axis=1)
        weight = MIDDLE_PRIOR**middles
        mass = np.bincount(n_present, weights=weight)  # per number of attributes
        log_prior = np.log(weight) - np.log(mass[n_present]) - math.log(len(attributes))
        return cls([a.name for a in attributes], present, values, log_prior)


def sq_distances(grid_present: np.ndarray, grid_values: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Squared distance of every profile to every response: (profiles, responses)."""
    mv = grid_present * grid_values
    out: np.ndarray = (grid_present @ (x * x).T) - 2.0 * (mv @ x.T) + (mv * grid_values).sum(axis=1, keepdims=True)
    return out


def choice_probs(d2: np.ndarray, beta: float, eps: float) -> np.ndarray:
    """P(choose r | profile) from squared distances with the responses on axis 1: (profiles, R)
    for one item, (profiles, R, items) for several with as many responses; in d2's dtype."""
    logits = -beta * d2
    logits -= logits.max(axis=1, keepdims=True)
    soft = np.exp(logits)
    soft /= soft.sum(axis=1, keepdims=True)
    out: np.ndarray = eps / d2.shape[1] + (1 - eps) * soft
    return out


def choice_log_probs(d2: np.ndarray, beta: float, eps: float) -> np.ndarray:
    """log P(choose r | profile) for one item's responses: (profiles, R)."""
    out: np.ndarray = np.log(choice_probs(d2, beta, eps))
    return out


def response_matrix(record: ChoiceRecord, attributes: Sequence[str]) -> np.ndarray:
    assert record.predictions is not None
    return np.array([[p[a] for a in attributes] for p in record.predictions], dtype=np.float64)


def posterior(grid: Grid, choices: Sequence[ChoiceRecord], beta: float = BETA, eps: float = EPSILON) -> np.ndarray:
    """Normalised posterior over the grid's profiles."""
    log_post = grid.log_prior.copy()
    for record in choices:
        deadline.check()  # a service deadline or a cancelled request stops a long fit
        d2 = sq_distances(grid.present, grid.values, response_matrix(record, grid.attributes))
        if record.chosen is None:  # no preference: the closest two nearly tie
            two = np.partition(d2, 1, axis=1)[:, :2]
            log_post += np.log(eps + (1 - eps) * np.exp(-beta * (two[:, 1] - two[:, 0])))
            continue
        log_post += choice_log_probs(d2, beta, eps)[:, record.chosen]
    log_post -= log_post.max()
    post = np.exp(log_post)
    return np.asarray(post / post.sum())


class AttributeFit(BaseModel):
    attribute: str
    weight: float
    value: float | None
    value_sd: float | None


class ProfileFit(BaseModel):
    target: dict[str, float]
    weights: dict[str, float]
    attributes: list[AttributeFit]
    n_choices: int
    n_explained: int

    def as_target(self, name: str = "profile") -> AlignmentTarget:
        return AlignmentTarget(name=name, values=self.target, weights=self.weights)

    def file_dict(self, plain: bool = False) -> dict[str, Any]:
        if plain:
            return {a: v for a, v in self.target.items() if self.weights[a] >= 0.5} or dict(self.target)
        return {"values": self.target, "weights": self.weights}


def fit_profile(
    attributes: Sequence[Attribute], choices: Sequence[ChoiceRecord], beta: float = BETA, eps: float = EPSILON
) -> ProfileFit:
    if not choices:
        raise InputError("no choices to fit a profile from")
    grid = Grid.build(attributes)
    check_predictions(choices, grid.attributes)
    post = posterior(grid, choices, beta, eps)
    fits = []
    values: dict[str, float] = {}
    weights: dict[str, float] = {}
    for k, name in enumerate(grid.attributes):
        p_present = float((post * grid.present[:, k]).sum())
        value = sd = None
        if p_present > 0:
            w = post * grid.present[:, k]
            mean = float((w * grid.values[:, k]).sum() / w.sum())
            sd = float(math.sqrt(max(0.0, (w * (grid.values[:, k] - mean) ** 2).sum() / w.sum())))
            value = round(mean, 4)
        fits.append(AttributeFit(attribute=name, weight=round(p_present, 4), value=value, value_sd=sd))
        if value is not None and p_present >= MIN_WEIGHT:
            values[name] = value
            weights[name] = round(p_present, 4)
    if not values:  # nothing stands out: keep the most likely attribute
        best = max(fits, key=lambda f: f.weight)
        values[best.attribute] = best.value if best.value is not None else 0.5
        weights[best.attribute] = max(best.weight, MIN_WEIGHT)
    fitted = ProfileFit(target=values, weights=weights, attributes=fits, n_choices=len(choices), n_explained=0)
    target = fitted.as_target()
    explained = sum(select(r.predictions or [], target).index == r.chosen for r in choices if r.chosen is not None)
    return fitted.model_copy(update={"n_explained": int(explained)})


def builtin_pool() -> list[ChoiceRecord]:
    """The pool shipped for the page's "Find my profile" flow: short HelpSteer2 train items
    (nvidia/HelpSteer2, CC-BY-4.0) whose predictions are the human annotators' labels."""
    from importlib import resources

    path = resources.files("pluralign") / "resources" / "profile_pool.jsonl"
    with resources.as_file(path) as real:
        return read_choices(real, need_chosen=False, what="profile pool")
