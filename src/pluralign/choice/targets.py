"""Alignment targets: the attribute values one person wants, and how to load or sample them."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from itertools import product
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.support.errors import InputError, validation_message
from pluralign.support.files import read_json
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
            raise ValueError("target is empty: give at least one attribute")
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


def target_from_data(raw: Any, name: str, registry: AttributeRegistry = DEFAULT_REGISTRY) -> AlignmentTarget:
    """Accept ``{"care": 1.0}`` (the paper's files) or ``{"values": ..., "weights": ...}``."""
    if not isinstance(raw, Mapping):
        raise InputError(f"target {name}: expected a JSON object of attribute -> value")
    body: dict[str, Any]
    if "values" in raw and isinstance(raw["values"], Mapping):
        body = {"name": raw.get("name", name), "values": raw["values"], "weights": raw.get("weights")}
    else:
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"target {name}: value for {key!r} must be a number in [0, 1]")
        body = {"name": name, "values": dict(raw)}
    try:
        target = AlignmentTarget.model_validate(body)
    except ValidationError as exc:
        raise InputError(validation_message(exc, f"target {name}: ")) from None
    try:
        return target.check_known(registry)
    except InputError as exc:
        raise InputError(f"target {name}: {exc}") from None


def load_target_file(path: str | Path, registry: AttributeRegistry = DEFAULT_REGISTRY) -> AlignmentTarget:
    path = Path(path)
    return target_from_data(read_json(path, "target file"), path.stem, registry)


def resolve_target_specs(
    specs: Sequence[str],
    benchmark_attributes: Sequence[str] | None = None,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
) -> list[AlignmentTarget]:
    """Expand SPECs: a JSON file, a directory of JSON files, or ``high``/``low``."""
    targets: list[AlignmentTarget] = []
    for spec in specs:
        if spec in {"high", "low"}:
            if not benchmark_attributes:
                raise InputError(f"target {spec!r} needs a benchmark to know its attributes")
            value = 1.0 if spec == "high" else 0.0
            targets.append(AlignmentTarget(name=spec, values={a: value for a in benchmark_attributes}))
            continue
        path = Path(spec)
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise InputError(f"target directory {path} has no .json files")
            targets.extend(load_target_file(f, registry) for f in files)
        elif path.exists():
            targets.append(load_target_file(path, registry))
        else:
            raise InputError(f"target {spec!r} is not a file, a directory, 'high' or 'low'")
    check_unique_names([t.name for t in targets])
    return targets


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
        raise InputError(f"--attributes must be between 1 and {len(attributes)}")
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
