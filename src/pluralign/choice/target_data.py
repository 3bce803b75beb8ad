"""Reading targets: a profile (``{"care": 1.0}`` or ``{"values": ..., "weights": ...}``) or a group
(a list of profiles, ``{"group": [...]}`` weighted, ``{"samples": [...]}`` equally weighted, a
``.jsonl`` file of one profile a line) from data, files, inline JSON and ``eval``'s specs. One
reader for both: what a ``--target`` holds decides whether it is a person or a group."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.choice.targets import (
    MAX_GROUP_MEMBERS,
    AlignmentTarget,
    GroupMember,
    GroupTarget,
    Target,
    check_unique_names,
)
from pluralign.support import strict
from pluralign.support.errors import InputError, validation_message
from pluralign.support.files import read_json, read_text


def _named(kind: str, name: str) -> str:
    """How a message names a target or a group: its kind and name, or its kind alone where its
    name is only its kind (one a request or an inline option gave)."""
    return kind if name == kind else f"{kind} {name}"


def profile_from_data(raw: Any, name: str, registry: AttributeRegistry = DEFAULT_REGISTRY) -> AlignmentTarget:
    """Accept ``{"care": 1.0}`` (the paper's files) or ``{"values": ..., "weights": ...}``."""
    if not isinstance(raw, Mapping):
        raise InputError(f"{_named('target', name)}: expected a JSON object of attribute -> value")
    body: dict[str, Any]
    if "values" in raw and isinstance(raw["values"], Mapping):
        strict.known_fields(raw, ("name", "values", "weights"), _named("target", name))
        body = {"name": raw.get("name", name), "values": raw["values"], "weights": raw.get("weights")}
    else:
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{_named('target', name)}: value for {key!r} must be a number in [0, 1]")
        body = {"name": name, "values": dict(raw)}
    try:
        target = AlignmentTarget.model_validate(body)
    except ValidationError as exc:
        raise InputError(validation_message(exc, f"{_named('target', name)}: ")) from None
    try:
        return target.check_known(registry)
    except InputError as exc:
        raise InputError(f"{_named('target', name)}: {exc}") from None


def load_profile_file(path: str | Path, registry: AttributeRegistry = DEFAULT_REGISTRY) -> AlignmentTarget:
    path = Path(path)
    return profile_from_data(read_json(path, "target file"), path.stem, registry)


def _member(raw: Any, where: str, default_name: str, registry: AttributeRegistry) -> GroupMember:
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a JSON object (a profile), found {type(raw).__name__}")
    weight: Any = 1.0
    if "values" in raw and isinstance(raw["values"], Mapping):
        strict.known_fields(raw, ("name", "values", "weights", "weight"), where)
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
        target = profile_from_data(body, label if isinstance(label, str) else default_name, registry)
    except InputError as exc:
        raise InputError(f"{where.split(',')[0]}: {exc}") from None
    return GroupMember(target=target, weight=float(weight))


def group_from_members(raw: Sequence[Any], name: str, registry: AttributeRegistry, what: str = "member") -> GroupTarget:
    group = _named("group", name)
    if not raw:
        raise InputError(f"{group}: no members")
    if len(raw) > MAX_GROUP_MEMBERS:
        raise InputError(f"{group}: {len(raw):,} members, at most {MAX_GROUP_MEMBERS:,}")
    members = [_member(m, f"{group}, {what} {i + 1}", f"{what}-{i + 1}", registry) for i, m in enumerate(raw)]
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


def target_from_data(raw: Any, name: str, registry: AttributeRegistry = DEFAULT_REGISTRY) -> Target:
    """One target (``{"care": 1}`` or the full form), or a group: a list of profiles,
    ``{"name": ..., "group": [...]}``, or ``{"name": ..., "samples": [...]}`` (equal weights)."""
    members = group_members(raw)
    if members is None:
        return profile_from_data(raw, name, registry)
    if isinstance(raw, list):
        return group_from_members(members, name, registry)
    label = raw.get("name", name)
    if not isinstance(label, str):
        raise InputError(f"{_named('group', name)}: name must be a string")
    strict.known_fields(raw, ("name", "group" if "group" in raw else "samples"), _named("group", label))
    if "group" in raw:
        return group_from_members(members, label, registry)
    for i, sample in enumerate(members):
        if isinstance(sample, Mapping) and "weight" in sample:
            raise InputError(
                f'{_named("group", label)}, sample {i + 1}: samples are weighted equally; use "group" for weights'
            )
    return group_from_members(members, label, registry, "sample")


def load_target_file(path: str | Path, registry: AttributeRegistry = DEFAULT_REGISTRY) -> Target:
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
    return target_from_data(read_json(path, "target file"), path.stem, registry)


def read_target(spec: str, registry: AttributeRegistry = DEFAULT_REGISTRY, option: str = "--target") -> Target:
    """A target or group from a file, or inline JSON like ``{"care": 1}`` or ``[{...}, {...}]``."""
    if not spec.strip():  # an unset variable: never the current folder
        raise InputError(f"{option} is empty: give inline JSON like '{{\"care\": 1}}' or a target file")
    if spec.lstrip()[:1] in {"{", "["}:
        try:
            raw = strict.loads(spec)
        except json.JSONDecodeError as exc:
            raise InputError(f"{option} is not valid JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"{option} cannot be read: {exc}") from None
        return target_from_data(raw, "group" if is_group_data(raw) else "target", registry)
    return load_target_file(spec, registry)


def resolve_target_specs(
    specs: Sequence[str],
    benchmark_attributes: Sequence[str] | None = None,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
) -> list[Target]:
    """``pluralign eval``'s SPECs: ``high``/``low``, inline JSON, a target or group file
    (``.json``, ``.jsonl``), or a directory of them; names must differ (they label results)."""
    targets: list[Target] = []
    for spec in specs:
        if not spec.strip():  # Path("") would be the current folder, its .json files targets
            raise InputError("--target is empty: give high, low, inline JSON, a target file or a folder of them")
        path = Path(spec)
        if spec in {"high", "low"}:
            if not benchmark_attributes:
                raise InputError(f"target {spec!r} needs a benchmark to know its attributes")
            value = 1.0 if spec == "high" else 0.0
            targets.append(AlignmentTarget(name=spec, values={a: value for a in benchmark_attributes}))
        elif spec.lstrip()[:1] in {"{", "["}:
            targets.append(read_target(spec, registry))
        elif path.is_dir():
            files = sorted([*path.glob("*.json"), *path.glob("*.jsonl")])
            if not files:
                raise InputError(f"target directory {path} has no .json or .jsonl files")
            targets.extend(load_target_file(f, registry) for f in files)
        elif path.is_file():
            targets.append(load_target_file(path, registry))
        else:
            raise InputError(f"target {spec!r} is not a file, a directory, inline JSON, 'high' or 'low'")
    check_unique_names([g.name for g in targets])
    return targets


RENAMED = {
    "goal_from_data": target_from_data,
    "load_goal_file": load_target_file,
    "read_goal": read_target,
    "resolve_goal_specs": resolve_target_specs,
}
"""0.2's names for these readers ("goal" is now "target"), until 0.4."""


def __getattr__(name: str) -> Any:
    if name in RENAMED:
        warnings.warn(f"{name} is now {RENAMED[name].__name__}", DeprecationWarning, stacklevel=2)
        return RENAMED[name]
    if name == "Goal":
        warnings.warn("Goal is now pluralign.choice.targets.Target", DeprecationWarning, stacklevel=2)
        return Target
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
