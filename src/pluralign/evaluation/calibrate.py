"""Fitting a calibration from run folders, and measuring one by cross-validation.

The (prediction, label) pairs come from what a run already holds: its assessments (the
judge's predictions, which do not depend on the target) and its decisions' labels, so no model
is asked again. Fit on runs over a benchmark's train items to calibrate an eval run out of
sample; on one run, :func:`cross_validate` fits on all items but one fold and chooses again on
that fold, fold by fold, and compares with the uncalibrated choices on the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from pluralign.choice.selection import Selection
from pluralign.evaluation.grading import Adjust, regrade
from pluralign.evaluation.metrics import Decision
from pluralign.evaluation.runs import RunDir
from pluralign.evaluation.statistics import BOOTSTRAP, PairedComparison, decision_matrix, mean_over_targets, paired
from pluralign.prediction.calibration import Calibration, fit_maps, judge_identity, judge_mismatch
from pluralign.prediction.methods.base import Assessment
from pluralign.support.errors import InputError

Pairs = dict[str, tuple[list[float], list[float]]]


def _labelled(run: RunDir) -> dict[int, tuple[Assessment, list[dict[str, float]]]]:
    """Item -> (its target-independent assessment, its responses' labels)."""
    labels = {d.item: d.labels for d in run.decisions()}
    done = run.assessments()[0]
    out = {}
    for (item, key), assessment in done.items():
        if key != "*":
            raise InputError(f"{run.path}: the method chose for each target; calibration needs predictions")
        if assessment.predictions is not None and item in labels:
            out[item] = (assessment, labels[item])
    if not out:
        raise InputError(f"{run.path}: no labelled item with predictions (a finished pluralign eval run is needed)")
    return out


def _pairs(items: Sequence[tuple[Assessment, list[dict[str, float]]]]) -> Pairs:
    pairs: Pairs = {}
    for assessment, labels in items:
        for predicted, label in zip(assessment.predictions or [], labels, strict=False):
            for attribute, value in predicted.items():
                if attribute in label:
                    xs, ys = pairs.setdefault(attribute, ([], []))
                    xs.append(float(value))
                    ys.append(float(label[attribute]))
    return pairs


def _judge(runs: Sequence[RunDir]) -> dict[str, Any]:
    judges = [judge_identity(run.identity().get("method") or {}) for run in runs]
    if not judges[0]:
        raise InputError(f"{runs[0].path}: no method recorded in run.json; is it a pluralign run?")
    for run, judge in zip(runs[1:], judges[1:], strict=True):
        if differ := judge_mismatch(judges[0], judge):
            raise InputError(f"{run.path} was judged by another judge than {runs[0].path}: {differ}")
    return judges[0]


def calibrate_runs(paths: Sequence[str | Path], first: int | None = None) -> Calibration:
    """One map per attribute from every labelled item of ``paths`` (runs of one judge); with
    ``first``, from each run's first ``first`` items only (two judges compared on as many)."""
    runs = [RunDir(p) for p in paths]
    judge = _judge(runs)
    labelled = [_labelled(run) for run in runs]
    items = [found[i] for found in labelled for i in sorted(found)[:first]]
    pairs = _pairs(items)
    return Calibration(
        judge=judge,
        attributes=fit_maps(pairs),
        fit_on={"runs": [str(p) for p in paths], "items": len(items)},
    )


def calibrating(calibration: Calibration, path: str | Path) -> Adjust:
    """``calibration`` as a run's adjustment when choosing again, once it is known to be the
    run's judge's (from run.json alone; an attribute it has no map for is refused as the first
    assessment that has one is adjusted)."""
    calibration.check_judge(RunDir(path).identity().get("method") or {})
    return lambda item, assessment: calibration.apply(assessment)


class CalibrationEffect(BaseModel):
    """A run's accuracy chosen again as it was, and chosen again from calibrated predictions
    (percent; the paired comparison is calibrated minus as it was). ``folds``: fit out of fold
    on the run itself; None: a calibration fit elsewhere."""

    run: str
    folds: int | None
    items: int
    targets: list[str]
    accuracy: float
    calibrated: float
    comparison: PairedComparison


def _effect(
    path: str | Path, adjust: Adjust, items: list[int], folds: int | None, seed: int, selection: Selection | str
) -> CalibrationEffect:
    plain, targets, _ = regrade(path, selection=selection)
    calibrated, _, _ = regrade(path, selection=selection, adjust=adjust)
    names = [t for t in targets if any(d.chosen is not None for d in plain[t])]

    def matrix(grouped: dict[str, list[Decision]]) -> np.ndarray:
        return decision_matrix([d for t in names for d in grouped[t]], names, 1 + max(items))[items]

    a, b = matrix(calibrated), matrix(plain)
    resamples = np.random.default_rng(seed).integers(0, len(a), size=(BOOTSTRAP, len(a)))
    return CalibrationEffect(
        run=str(path),
        folds=folds,
        items=len(items),
        targets=names,
        accuracy=round(mean_over_targets(b), 2),
        calibrated=round(mean_over_targets(a), 2),
        comparison=paired(a, b, resamples, flip_seed=seed),
    )


def calibration_effect(
    path: str | Path, calibration: Calibration, seed: int = 0, selection: Selection | str = Selection.closest
) -> CalibrationEffect:
    """What a calibration fit elsewhere (on other items) does to a run of the same judge."""
    adjust = calibrating(calibration, path)
    return _effect(path, adjust, sorted(_labelled(RunDir(path))), None, seed, selection)


def cross_validate(
    path: str | Path, folds: int = 5, seed: int = 0, selection: Selection | str = Selection.closest
) -> CalibrationEffect:
    """Fit on all folds but one, choose again on that one; item folds drawn with ``seed``."""
    run = RunDir(path)
    judge = _judge([run])
    labelled = _labelled(run)
    items = sorted(labelled)
    if folds < 2 or folds > len(items):
        raise InputError(f"--folds must be between 2 and the run's {len(items)} labelled items, got {folds}")
    rng = np.random.default_rng(seed)
    fold_of = {item: i % folds for i, item in enumerate(rng.permutation(items).tolist())}
    per_fold = []
    for k in range(folds):
        train = [labelled[i] for i in items if fold_of[i] != k]
        per_fold.append(Calibration(judge=judge, attributes=fit_maps(_pairs(train))))

    def adjust(item: int, assessment: Assessment) -> Assessment:
        return per_fold[fold_of[item]].apply(assessment) if item in fold_of else assessment

    return _effect(path, adjust, items, folds, seed, selection)
