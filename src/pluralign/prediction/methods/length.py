"""The length baseline: each attribute predicted from the response's length alone.

A per-attribute least-squares line from log length (characters) to the label, fit on the
benchmark's train set (or ``--examples``), zero model calls. It is the row every table needs:
on HelpSteer2 length alone predicts verbosity and complexity well and the other attributes a
little, so a method that does not beat it has shown nothing beyond length (docs/results.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction.examples import ExampleOptions
from pluralign.prediction.methods.base import Assessment, Method
from pluralign.prediction.methods.registry import MethodSpec, register_method
from pluralign.support.errors import InputError


def log_length(response: str) -> float:
    """The one feature: log(1 + characters)."""
    return math.log1p(len(response))


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept; a flat line at the mean when every x is the same."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return 0.0, my
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return slope, my - slope * mx


class LengthMethod(Method):
    """Predicts every attribute from log length with a line fit on labelled train items."""

    name = "length"

    def __init__(self, train: Sequence[Probe]) -> None:
        self._rows = [
            (log_length(p.responses[i]), p.labels[i])
            for p in train
            if p.labels is not None
            for i in range(len(p.responses))
        ]
        if not self._rows:
            raise InputError("the length method needs a labelled train set (train.json or --examples)")
        self._n_train = len(train)
        self._lines: dict[str, tuple[float, float]] = {}

    def config(self) -> dict[str, Any]:
        return {"method": self.name, "feature": "log1p(characters)", "n_train": self._n_train}

    def line(self, attribute: str) -> tuple[float, float]:
        """The fitted (slope, intercept) for one attribute."""
        if attribute not in self._lines:
            pairs = [(x, labels[attribute]) for x, labels in self._rows if attribute in labels]
            if not pairs:
                raise InputError(f"the train set has no labels for {attribute}")
            self._lines[attribute] = fit_line([x for x, _ in pairs], [y for _, y in pairs])
        return self._lines[attribute]

    def assess(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Assessment:
        preds: list[dict[str, float]] = [{} for _ in probe.responses]
        for attribute in attributes:
            slope, intercept = self.line(attribute.name)
            for i, response in enumerate(probe.responses):
                preds[i][attribute.name] = min(1.0, max(0.0, slope * log_length(response) + intercept))
        reasons = [
            {a.name: f"From its length ({len(r)} characters) alone." for a in attributes} for r in probe.responses
        ]
        return Assessment(predictions=preds, reasonings=reasons)


register_method(
    MethodSpec(
        name="length",
        summary="each attribute from response length alone, a line fit on the train set (the length baseline)",
        build=lambda o, r: LengthMethod(r.train_probes(o)),
        options=ExampleOptions,
    )
)
