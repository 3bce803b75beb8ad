"""Group targets: choosing for a population of people rather than one (distributional pluralism).

A :class:`GroupTarget` is a list of weighted profiles (each an :class:`AlignmentTarget`).
Every member "chooses" the response closest to their own target, exactly as one person's
selection does (same metric and tie rule); a member whose closest responses tie splits their
weight equally among them, so no response gains from sitting first. A response's **share**
is the weighted fraction of the group that chooses it (the shares sum to 1), and the group's
choice is the response with the largest share; equal shares (within 1e-9: shares are sums
of weights, their last bits mean nothing) go to the lowest index, the paper's rule.

Scores never depend on the target, so a group costs no more judging than one person: the
judge scores the union of the members' attributes once; only selection changes.

The group form also covers distribution (KDE) targets: ``{"samples": [{...}, ...]}`` is a
group whose members are the samples, weighted equally.

Knows nothing of LLMs: it reads predictions (or labels) and a group.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.choice.selection import Metric, TieRule, closest, distance, parse_metric, target_vector
from pluralign.choice.targets import (
    AlignmentTarget,
    check_unique_names,
    resolve_target_specs,
    target_from_data,
    union_attributes,
)
from pluralign.support import strict
from pluralign.support.errors import InputError, validation_message
from pluralign.support.files import read_json, read_text
from pluralign.support.names import checked_label

MAX_GROUP_MEMBERS = 10_000
SHARE_TOLERANCE = 1e-9
SPLIT_SHARE = 0.05
"""A response chosen by at most this share of the group is not named in the explanation."""


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


Goal = AlignmentTarget | GroupTarget
"""What a ``--target`` names: one person's target, or a group of them."""


def _member(raw: Any, where: str, default_name: str, registry: AttributeRegistry) -> GroupMember:
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a JSON object (a profile), found {type(raw).__name__}")
    weight: Any = 1.0
    if "values" in raw and isinstance(raw["values"], Mapping):
        weight = raw.get("weight", 1.0)
        body = {k: v for k, v in raw.items() if k != "weight"}
    elif "weight" in raw and "weight" not in registry:
        raise InputError(
            f'{where}: a member\'s weight goes with the full form, e.g. {{"values": {{"care": 1}}, "weight": 2}}'
        )
    else:  # the plain form, with an optional name
        body = {k: v for k, v in raw.items() if k != "name" or "name" in registry}
        if isinstance(raw.get("name"), str):
            body = {"name": raw["name"], "values": body}
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
        raise InputError(f"{where}: weight must be a positive number, got {weight!r}")
    label = body.get("name")
    try:
        target = target_from_data(body, label if isinstance(label, str) else default_name, registry)
    except InputError as exc:
        raise InputError(f"{where.split(',')[0]}: {exc}") from None
    return GroupMember(target=target, weight=float(weight))


def group_from_members(raw: Sequence[Any], name: str, registry: AttributeRegistry, what: str = "member") -> GroupTarget:
    if not raw:
        raise InputError(f"group {name}: no members")
    if len(raw) > MAX_GROUP_MEMBERS:
        raise InputError(f"group {name}: {len(raw):,} members, at most {MAX_GROUP_MEMBERS:,}")
    members = [_member(m, f"group {name}, {what} {i + 1}", f"{what}-{i + 1}", registry) for i, m in enumerate(raw)]
    try:
        return GroupTarget(name=name, members=members)
    except ValidationError as exc:
        raise InputError(validation_message(exc)) from None


def group_members(raw: Any) -> list[Any] | None:
    """The members of group data (a list of profiles, or an object holding ``group`` or
    ``samples`` as a list); None for anything else (a single target)."""
    if isinstance(raw, list):
        return raw
    if not isinstance(raw, Mapping) or not any(isinstance(raw.get(k), list) for k in ("group", "samples")):
        return None
    if "group" in raw and "samples" in raw:
        raise InputError('a group gives "group" (weighted) or "samples" (equal weights), not both')
    members: list[Any] = raw["group"] if "group" in raw else raw["samples"]
    return members


def is_group_data(raw: Any) -> bool:
    """A list of profiles, or an object holding ``group`` or ``samples`` as a list."""
    return group_members(raw) is not None


def goal_from_data(raw: Any, name: str, registry: AttributeRegistry = DEFAULT_REGISTRY) -> Goal:
    """One target (``{"care": 1}`` or the full form), or a group: a list of profiles,
    ``{"name": ..., "group": [...]}``, or ``{"name": ..., "samples": [...]}`` (equal weights)."""
    members = group_members(raw)
    if members is None:
        return target_from_data(raw, name, registry)
    if isinstance(raw, list):
        return group_from_members(members, name, registry)
    label = raw.get("name", name)
    if not isinstance(label, str):
        raise InputError(f"group {name}: name must be a string")
    if "group" in raw:
        return group_from_members(members, label, registry)
    for i, sample in enumerate(members):
        if isinstance(sample, Mapping) and "weight" in sample:
            raise InputError(f'group {label}, sample {i + 1}: samples are weighted equally; use "group" for weights')
    return group_from_members(members, label, registry, "sample")


def load_goal_file(path: str | Path, registry: AttributeRegistry = DEFAULT_REGISTRY) -> Goal:
    """A ``.jsonl`` file is a group (one profile a line); a ``.json`` file is a target or a group."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(read_text(path, "group file").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(strict.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: line {number} is not JSON ({exc.msg})") from None
            except (ValueError, RecursionError) as exc:
                raise InputError(f"{path}: line {number} cannot be read ({exc})") from None
        return group_from_members(rows, path.stem, registry)
    return goal_from_data(read_json(path, "target file"), path.stem, registry)


def read_goal(spec: str, registry: AttributeRegistry = DEFAULT_REGISTRY) -> Goal:
    """A target or group from a file, or inline JSON like ``{"care": 1}`` or ``[{...}, {...}]``."""
    if spec.lstrip()[:1] in {"{", "["}:
        try:
            raw = strict.loads(spec)
        except json.JSONDecodeError as exc:
            raise InputError(f"--target is not valid JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"--target cannot be read: {exc}") from None
        return goal_from_data(raw, "group" if is_group_data(raw) else "target", registry)
    return load_goal_file(spec, registry)


# -- selection -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupChoice:
    """The group's pick, each response's share, and each member's own closest responses."""

    index: int
    shares: list[float]
    tied: list[int]
    picks: list[list[int]]
    distances: list[float]
    """Each response's weighted mean distance to the members' targets (ordering, display)."""

    @property
    def is_tie(self) -> bool:
        return len(self.tied) > 1


def member_picks(
    predictions: Sequence[Mapping[str, float]],
    group: GroupTarget,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
    what: str = "prediction",
) -> tuple[list[list[int]], list[list[float]]]:
    """Each member's closest responses (several when they tie) and distances, as one target's
    selection would find them."""
    picks, dists = [], []
    for member in group.members:
        row = [distance(target_vector(p, member.target, what), member.target, metric) for p in predictions]
        picks.append(closest(row, ties))
        dists.append(row)
    return picks, dists


def shares_of(picks: Sequence[Sequence[int]], group: GroupTarget, n: int) -> list[float]:
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


def select_group(
    predictions: Sequence[Mapping[str, float]],
    group: GroupTarget,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
) -> GroupChoice:
    if len(predictions) < 2:
        raise InputError("selection needs at least 2 responses")
    picks, dists = member_picks(predictions, group, metric, ties)
    shares = shares_of(picks, group, len(predictions))
    best = top_shares(shares)
    weights = group.scaled_weights
    total = sum(weights)
    mean = [
        float(sum(w * row[i] for w, row in zip(weights, dists, strict=True)) / total) for i in range(len(predictions))
    ]
    return GroupChoice(index=best[0], shares=shares, tied=best if len(best) > 1 else [], picks=picks, distances=mean)


def group_picker(group: GroupTarget, attributes: Sequence[str], metric: Metric | str) -> Callable[[np.ndarray], int]:
    """The group's pick from a matrix of values (responses x ``attributes``), vectorised for
    the confidence's hundreds of re-judgements (near-equal distances count as ties)."""
    metric = parse_metric(metric)
    index = {a: k for k, a in enumerate(attributes)}
    goals = np.zeros((len(group.members), len(attributes)))
    scale = np.zeros_like(goals)
    for m, member in enumerate(group.members):
        weighted = metric == Metric.weighted or (metric == Metric.auto and member.target.weights)
        for a, v in member.target.values.items():
            goals[m, index[a]] = v
            scale[m, index[a]] = member.target.weight(a) if weighted else 1.0
    weights = np.array(group.scaled_weights)

    def pick(values: np.ndarray) -> int:
        diff = goals[:, None, :] - values[None, :, :]  # members x responses x attributes
        if metric == Metric.l1:
            d = (scale[:, None, :] * np.abs(diff)).sum(axis=2)
        else:
            d = np.sqrt((scale[:, None, :] * diff * diff).sum(axis=2))
        best = d <= d.min(axis=1, keepdims=True) + 1e-9
        split = best / best.sum(axis=1, keepdims=True)
        shares = (weights[:, None] * split).sum(axis=0)
        return int(top_shares(list(shares / shares.sum()))[0])

    return pick


def resolve_goal_specs(
    specs: Sequence[str],
    benchmark_attributes: Sequence[str] | None = None,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
) -> list[Goal]:
    """``pluralign eval``'s SPECs: ``high``/``low``, inline JSON, a target or group file
    (``.json``, ``.jsonl``), or a directory of them; names must differ (they label results)."""
    goals: list[Goal] = []
    for spec in specs:
        path = Path(spec)
        if spec in {"high", "low"}:
            goals.extend(resolve_target_specs([spec], benchmark_attributes, registry))
        elif spec.lstrip()[:1] in {"{", "["}:
            goals.append(read_goal(spec, registry))
        elif path.is_dir():
            files = sorted([*path.glob("*.json"), *path.glob("*.jsonl")])
            if not files:
                raise InputError(f"target directory {path} has no .json or .jsonl files")
            goals.extend(load_goal_file(f, registry) for f in files)
        elif path.is_file():
            goals.append(load_goal_file(path, registry))
        else:
            raise InputError(f"target {spec!r} is not a file, a directory, inline JSON, 'high' or 'low'")
    check_unique_names([g.name for g in goals])
    return goals
