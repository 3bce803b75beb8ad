"""What a run will do: its items, its targets (people and groups together, in the order given),
the attributes judged once for all of them, and the judgement keys per item."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from pluralign.choice.attributes import DEFAULT_REGISTRY, Attribute, AttributeRegistry
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget, GroupTarget, Target, union_attributes
from pluralign.evaluation.data.benchmark import Benchmark
from pluralign.prediction.methods.base import Method
from pluralign.support.errors import InputError

ALL_TARGETS = "*"
"""The judgement key of a method that judges once for every target."""


def item_seed(seed: int, index: int) -> int:
    """A stable per-item seed, independent of which other items or targets are run."""
    return zlib.crc32(f"{seed}:{index}".encode())


@dataclass(frozen=True)
class EvalPlan:
    """The items, targets and attributes of a run, and the judgement keys per item."""

    probes: list[Probe]
    targets: list[Target]
    attributes: list[Attribute]
    target_dependent: bool

    @property
    def keys(self) -> list[str]:
        return [t.name for t in self.targets] if self.target_dependent else [ALL_TARGETS]

    def key_of(self, target: Target) -> str:
        return target.name if self.target_dependent else ALL_TARGETS

    def needed(self, key: str) -> list[Attribute]:
        if key == ALL_TARGETS:
            return list(self.attributes)
        wanted = self.target_for(key)
        return [a for a in self.attributes if wanted is not None and a.name in wanted.attributes]

    def target_for(self, key: str) -> AlignmentTarget | None:
        """The person a target-dependent method judges for (None: judged once for all)."""
        if key == ALL_TARGETS:
            return None
        found = next(t for t in self.targets if t.name == key)
        return found if isinstance(found, AlignmentTarget) else None


def make_plan(
    benchmark: Benchmark,
    method: Method,
    targets: Sequence[Target],
    limit: int | None = None,
    registry: AttributeRegistry = DEFAULT_REGISTRY,
) -> EvalPlan:
    if not targets:
        raise InputError("no targets given")
    groups = [t for t in targets if isinstance(t, GroupTarget)]
    if groups and method.target_dependent:
        raise InputError(
            f"method {method.name} judges for one target at a time; a group target ({groups[0].name}) needs "
            "a method that judges once for everyone (spm, spm-zeroshot, regression, embedding, unaligned, random)"
        )
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    probes = benchmark.eval[:limit] if limit is not None else list(benchmark.eval)
    if not probes:
        raise InputError(f"the benchmark {benchmark.path} has no eval items")
    people = [m.target for t in targets for m in (t.members if isinstance(t, GroupTarget) else [])]
    names = union_attributes([*(t for t in targets if isinstance(t, AlignmentTarget)), *people])
    for i, probe in enumerate(probes):
        if probe.labels is None:
            raise InputError(f"eval item {i} has no labels; evaluation needs labelled items")
        for j, label in enumerate(probe.labels):
            missing = [a for a in names if a not in label]
            if missing:
                raise InputError(f"eval item {i}, response {j}: no label for {', '.join(missing)}")
    return EvalPlan(
        probes=probes,
        targets=list(targets),
        attributes=registry.require(names),
        target_dependent=method.target_dependent,
    )
