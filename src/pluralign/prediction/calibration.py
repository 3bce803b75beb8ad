"""Calibration: per attribute, a monotone map from a judge's predictions to labels.

A judge can order responses well and still place them on the wrong part of the scale (the
1.5B judge predicts complexity 0.65 where labels average 0.35); selection measures distances
to a target, so the scale matters. ``pluralign calibrate`` fits, per attribute, an isotonic
(non-decreasing) map from predictions to labels on labelled items the judge has assessed, and
``--calibration FILE`` applies it before selection. The map is kept as the isotonic fit's
breakpoints, applied by linear interpolation (what scikit-learn's ``IsotonicRegression`` does,
clipped at both ends), in plain JSON: nothing is unpickled.

A calibration belongs to one judge: the method configuration it was fit on is stored, and
applying it to predictions of another model, method, estimator, scale, prompt set or few-shot
setting (similarity, rule, count, clipping) is refused. The example set's size is not bound: a
calibration fit out of sample is fit with examples that leave its fitting items out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from pluralign.prediction.methods.base import Assessment
from pluralign.support.errors import InputError, validation_message
from pluralign.support.files import read_json, write_json_atomic
from pluralign.support.strict import Closed, Number

FORMAT: Literal["pluralign-calibration"] = "pluralign-calibration"
JUDGE_KEYS = (
    "method", "backend", "model", "scale", "scoring", "estimator", "prompts", "prompt_files", "reasoning", "examples",
)  # fmt: skip
"""What makes two judges' predictions comparable (sampling passes and token limits do not). A
method's configuration leaves out a setting at its default (``prompts`` only for a prompt folder,
``reasoning`` only when it is off), so a setting on one side and not the other is a difference."""
LATER_KEYS = ("examples", "prompt_files")
"""Bound after calibrations were first written: a file without them was fit before they were, and
is not refused for them."""
EXAMPLE_SET_KEYS = ("n_items",)
"""Of the few-shot configuration, what describes the example set rather than how it is used."""
MIN_PAIRS = 10


class AttributeMap(Closed):
    """A non-decreasing piecewise-linear map on [0, 1]: breakpoints ``x`` (increasing) and ``y``."""

    x: list[Number] = Field(min_length=1)
    y: list[Number] = Field(min_length=1)
    pairs: int = Field(ge=0, description="(prediction, label) pairs it was fit on.")

    @model_validator(mode="after")
    def _monotone(self) -> AttributeMap:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} breakpoints but {len(self.y)} values")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)) or any(
            b < a for a, b in zip(self.y, self.y[1:], strict=False)
        ):
            raise ValueError("breakpoints and values must not decrease")
        if not all(0.0 <= v <= 1.0 for v in [*self.x, *self.y]):
            raise ValueError("breakpoints and values must lie on [0, 1]")
        return self

    def __call__(self, value: float) -> float:
        return float(np.interp(value, self.x, self.y))


class Calibration(Closed):
    """One judge's maps, per attribute, and what they were fit on."""

    format: Literal["pluralign-calibration"] = FORMAT
    version: Literal[1] = 1
    judge: dict[str, Any]
    attributes: dict[str, AttributeMap] = Field(min_length=1)
    fit_on: dict[str, Any] = Field(default_factory=dict)

    def digest(self) -> str:
        """A short fingerprint, recorded with the figures a calibration produced."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_judge(self, judge: Mapping[str, Any], where: str = "--calibration") -> None:
        """Refuse, in one line, predictions of another judge (``judge``: a method's configuration)."""
        if differ := judge_mismatch(self.judge, judge):
            raise InputError(f"{where} was fit for another judge: {differ}")

    def check_attributes(self, attributes: Sequence[str], where: str = "--calibration") -> None:
        """Refuse, in one line, attributes it has no map for."""
        missing = [a for a in attributes if a not in self.attributes]
        if missing:
            raise InputError(f"{where} has no map for {', '.join(missing)} (it maps {', '.join(self.attributes)})")

    def apply(self, assessment: Assessment) -> Assessment:
        """The assessment with its predictions, draws and level values mapped (a direct choice is
        left as it is); an attribute without a map is refused."""
        if assessment.predictions is None:
            return assessment
        self.check_attributes(sorted({a for p in assessment.predictions for a in p}))

        def mapped(a: str, v: float) -> float:
            return self.attributes[a](v)

        predictions = [{a: mapped(a, v) for a, v in p.items()} for p in assessment.predictions]
        draws = {a: [[mapped(a, v) for v in row] for row in rows] for a, rows in (assessment.draws or {}).items()}
        levels: dict[str, list[dict[str, float]]] | None = None
        if assessment.level_probs is not None:
            levels = {}
            for a, rows in assessment.level_probs.items():
                levels[a] = []
                for dist in rows:
                    moved: dict[str, float] = {}
                    for level, p in dist.items():
                        key = repr(round(mapped(a, float(level)), 6))
                        moved[key] = moved.get(key, 0.0) + p
                    levels[a].append(moved)
        return assessment.model_copy(
            update={"predictions": predictions, "draws": draws or assessment.draws, "level_probs": levels}
        )


def judge_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a method's configuration a calibration is bound to."""
    out = {k: config[k] for k in JUDGE_KEYS if k in config}
    if isinstance(out.get("examples"), Mapping):
        out["examples"] = {k: v for k, v in out["examples"].items() if k not in EXAMPLE_SET_KEYS}
    return out


def judge_mismatch(fit: Mapping[str, Any], given: Mapping[str, Any]) -> str:
    """Where the judge ``given`` (a method's configuration) parts from the judge ``fit`` (a
    calibration's), as "setting fit's (not given's), ..."; empty when it does not. A part that is
    a mapping (the few-shot settings) is compared setting by setting, so a refusal names one."""
    fit, given = judge_identity(fit), judge_identity(given)
    out: list[str] = []
    for key in JUDGE_KEYS:
        if key not in fit and key in LATER_KEYS:  # a calibration from before the setting was bound
            continue
        a, b = fit.get(key), given.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"{key}.{k} {a.get(k)!r} (not {b.get(k)!r})" for k in sorted({*a, *b}) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{key} {a!r} (not {b!r})")
    return ", ".join(out)


def fit_maps(pairs: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> dict[str, AttributeMap]:
    """Per attribute, the isotonic fit of labels on predictions (scikit-learn), as breakpoints."""
    try:
        from sklearn.isotonic import IsotonicRegression
    except ImportError:
        raise InputError(
            "calibration needs scikit-learn: pip install scikit-learn (it comes with pluralign[embeddings])"
        ) from None
    if not pairs:
        raise InputError("no prediction has a label of the same attribute to be fit on")
    out = {}
    for attribute, (predicted, labels) in pairs.items():
        if len(predicted) < MIN_PAIRS:
            raise InputError(f"{attribute}: {len(predicted)} labelled predictions; a map needs at least {MIN_PAIRS}")
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        model.fit(np.asarray(predicted, dtype=float), np.asarray(labels, dtype=float))
        x = [min(1.0, max(0.0, float(v))) for v in model.X_thresholds_]
        y = [min(1.0, max(0.0, float(v))) for v in model.y_thresholds_]
        out[attribute] = AttributeMap(x=x, y=y, pairs=len(predicted))
    return out


def load_calibration(path: str | Path) -> Calibration:
    """A calibration file, or one line saying what is wrong with it."""
    raw = read_json(Path(path), "calibration file")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise InputError(f"{path}: not a pluralign calibration (made by pluralign calibrate)")
    try:
        return Calibration.model_validate(raw)
    except ValidationError as exc:
        raise InputError(validation_message(exc, f"{path}: ")) from None


def save_calibration(path: str | Path, calibration: Calibration) -> None:
    write_json_atomic(path, calibration.model_dump(mode="json"), indent=2)
