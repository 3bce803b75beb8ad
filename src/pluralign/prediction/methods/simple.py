"""Methods that need no model: a seeded random choice and the oracle (true labels)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction.methods.base import Assessment, Method
from pluralign.prediction.methods.registry import MethodSpec, register_method
from pluralign.support.errors import InputError


class RandomMethod(Method):
    """Uniform choice, reproducible from the item seed: the floor every method must beat."""

    name = "random"

    def assess(
        self,
        probe: Probe,
        attributes: Sequence[Attribute],
        target: AlignmentTarget | None = None,
        seed: int = 0,
    ) -> Assessment:
        index = random.Random(seed).randrange(len(probe.responses))
        return Assessment(choice=index, choice_reasoning="Chosen at random.")


class OracleMethod(Method):
    """Predicts the true labels: the ceiling, and a check of the scoring itself."""

    name = "oracle"

    def assess(
        self,
        probe: Probe,
        attributes: Sequence[Attribute],
        target: AlignmentTarget | None = None,
        seed: int = 0,
    ) -> Assessment:
        if probe.labels is None:
            raise InputError("the oracle needs labelled probes")
        names = [a.name for a in attributes]
        try:
            preds = [dict(zip(names, probe.label_vector(i, names), strict=True)) for i in range(len(probe.responses))]
        except InputError as exc:
            raise InputError(f"missing label: {exc}") from None
        return Assessment(
            predictions=preds,
            reasonings=[{a: "True label." for a in names} for _ in probe.responses],
        )


register_method(
    MethodSpec(name="random", summary="a seeded uniform choice (the floor)", build=lambda o, r: RandomMethod())
)
register_method(
    MethodSpec(
        name="oracle", summary="the true labels (the ceiling; a check of scoring)", build=lambda o, r: OracleMethod()
    )
)
