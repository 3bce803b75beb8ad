"""Targets: what a choice is made for. A **profile** (:class:`AlignmentTarget`) is the attribute
values one person wants; a **group** (:class:`GroupTarget`) is weighted profiles (a team, a user
base, samples of a distribution). A :data:`Target` is either, and takes one road: a person is a
group of one (:func:`as_group`), so one selection, one explanation and one grading serve both,
and for one person they give exactly the paper's figures.

Reading targets from data and files is :mod:`pluralign.choice.target_data`; this module holds the
types and the paper's target sampler."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from itertools import product
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.support.errors import InputError
from pluralign.support.names import checked_label
from pluralign.support.strict import Number


class AlignmentTarget(BaseModel):
    """attribute -> desired value in [0, 1], with optional per-attribute weights."""

    model_config = ConfigDict(frozen=True)

    name: str = "target"
    values: dict[str, Number]  # "0.5" or true is refused, as the plain form refuses it
    weights: dict[str, Number] | None = Field(default=None)

    @field_validator("name")
    @classmethod
    def _label(cls, value: str) -> str:
        return checked_label(value, "target name")

    @model_validator(mode="after")
    def _check(self) -> AlignmentTarget:
        if not self.values:
            raise ValueError("empty: name at least one attribute")
        for attr, value in self.values.items():
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"value for {attr!r} must be a number in [0, 1]")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"value {value} for {attr!r} is outside [0, 1]")
        if self.weights is not None:
            extra = set(self.weights) - set(self.values)
            if extra:
                raise ValueError(f"weights name attributes not in the target: {sorted(extra)}")
            for attr, weight in self.weights.items():
                if not math.isfinite(weight) or weight < 0:
                    raise ValueError(f"weight for {attr!r} must be a non-negative number")
            if all(self.weight(a) == 0 for a in self.values):
                raise ValueError("every weight is 0: every response would tie; give some attribute a weight")
        return self

    @property
    def attributes(self) -> list[str]:
        return list(self.values)

    def weight(self, attribute: str) -> float:
        if self.weights is None:
            return 1.0
        return self.weights.get(attribute, 1.0)

    def check_known(self, registry: AttributeRegistry = DEFAULT_REGISTRY) -> AlignmentTarget:
        registry.require(self.values)
        return self

    def to_file_dict(self) -> dict[str, Any]:
        """The paper's plain format when there are no weights, else the full form."""
        if self.weights is None:
            return dict(self.values)
        return {"name": self.name, "values": self.values, "weights": self.weights}


def union_attributes(targets: Sequence[AlignmentTarget]) -> list[str]:
    """Every attribute the targets name, in first-seen order (what the judge scores once)."""
    names: list[str] = []
    for target in targets:
        names.extend(a for a in target.values if a not in names)
    return names


MAX_GROUP_MEMBERS = 10_000


class GroupMember(BaseModel):
    """One person (or profile, or sample) of a group, and how much they count."""

    model_config = ConfigDict(frozen=True)

    target: AlignmentTarget
    weight: float = 1.0


class GroupTarget(BaseModel):
    """Weighted profiles; the group's choice is the response the largest share would choose."""

    model_config = ConfigDict(frozen=True)

    name: str = "group"
    members: list[GroupMember] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _label(cls, value: str) -> str:
        return checked_label(value, "group name")

    @property
    def attributes(self) -> list[str]:
        """Every attribute any member names, in first-seen order (what the judge scores)."""
        return union_attributes([m.target for m in self.members])

    @property
    def total_weight(self) -> float:
        return float(sum(m.weight for m in self.members))

    @property
    def scaled_weights(self) -> list[float]:
        """Each member's weight over the largest: what every share is computed from, the same
        ratios as the weights given, without underflow (weights of 5e-324) or overflow (1e308)."""
        top = max(m.weight for m in self.members)
        return [m.weight / top for m in self.members]

    def mean_values(self) -> dict[str, float]:
        """Per attribute, the weighted mean over the members who name it (shown, not selected on)."""
        out = {}
        for a in self.attributes:
            having = [
                (w, m.target.values[a])
                for w, m in zip(self.scaled_weights, self.members, strict=True)
                if a in m.target.values
            ]
            total = sum(w for w, _ in having)
            out[a] = float(sum(w * v for w, v in having) / total) if total > 0 else 0.0
        return out

    def check_known(self, registry: AttributeRegistry = DEFAULT_REGISTRY) -> GroupTarget:
        for member in self.members:
            member.target.check_known(registry)
        return self

    def to_file_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "group": [{**_full_form(m.target), "weight": m.weight} for m in self.members],
        }


def _full_form(target: AlignmentTarget) -> dict[str, Any]:
    body: dict[str, Any] = {"name": target.name, "values": dict(target.values)}
    if target.weights is not None:
        body["weights"] = dict(target.weights)
    return body


Target = AlignmentTarget | GroupTarget
"""What a ``--target`` names: one person's profile, or a group of them."""


def as_group(target: Target) -> GroupTarget:
    """The group a target is: itself, or for one person a group of one (weight 1)."""
    if isinstance(target, GroupTarget):
        return target
    return GroupTarget(name=target.name, members=[GroupMember(target=target, weight=1.0)])


def one_person(target: Target) -> AlignmentTarget | None:
    """The person a target is, when it is one (a group of one member counts as that member)."""
    if isinstance(target, AlignmentTarget):
        return target
    return target.members[0].target if len(target.members) == 1 else None


def target_values(target: Target) -> dict[str, float]:
    """What a target asks for, as shown: a person's values, or a group's weighted means."""
    return dict(target.values) if isinstance(target, AlignmentTarget) else target.mean_values()


def check_unique_names(names: Sequence[str]) -> None:
    """Names label results (and the reference files derived from them): two may not be equal."""
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"several targets share the name(s) {dupes}; rename the files")


def all_target_combinations(attributes: Sequence[str], levels: int) -> list[dict[str, float]]:
    """Every combination of levels over the attributes, with 0.5 values dropped (the paper's)."""
    values = [round(i / (levels - 1), 2) for i in range(levels)]
    combos = []
    for combo in product(values, repeat=len(attributes)):
        combos.append({a: v for a, v in zip(attributes, combo, strict=True) if v != 0.5})
    return combos


MAX_LEVELS = 101
MAX_COMBINATIONS = 2_000_000


def sample_targets(
    attributes: Sequence[str], levels: int, n_attributes: int, count: int, seed: int = 42
) -> list[dict[str, float]]:
    """Draw ``count`` targets with exactly ``n_attributes`` attributes.

    Mirrors the paper: ``random.seed(seed)`` then ``random.sample`` over the combinations
    in ``itertools.product`` order, so the published target files are reproduced exactly.
    """
    if not 1 <= n_attributes <= len(attributes):
        raise InputError(f"--n-attributes must be between 1 and {len(attributes)}")
    if not 2 <= levels <= MAX_LEVELS:
        raise InputError(f"--levels must be between 2 and {MAX_LEVELS} (values are rounded to 2 decimals)")
    if count < 1:
        raise InputError("--count must be at least 1")
    combinations = levels ** len(attributes)
    if combinations > MAX_COMBINATIONS:
        raise InputError(
            f"{levels} levels over {len(attributes)} attributes make {combinations:.3g} combinations to draw from "
            f"(at most {MAX_COMBINATIONS:,}); use fewer levels or name fewer attributes"
        )
    pool = [t for t in all_target_combinations(attributes, levels) if len(t) == n_attributes]
    if count > len(pool):
        raise InputError(f"only {len(pool)} distinct targets have {n_attributes} attributes")
    rng = random.Random(seed)
    return rng.sample(pool, count)
