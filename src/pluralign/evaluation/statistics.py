"""Paired comparisons of two runs on the same items: is one method's lead more than noise?

A run's decisions form a matrix, items x targets: 1 right, 0 wrong, NaN where the item was
skipped (every response ties for that target), failed or not run. Two runs are compared on the
cells both have:

* the **difference** of their accuracies (the mean over targets of each target's accuracy), with
  a 95% interval from a paired bootstrap that resamples **items** (an item's decisions for all
  its targets share one judgement, so they move together);
* **McNemar's exact test** on the pooled item x target decisions (how many only A got right,
  only B), which treats the decisions as independent and so overstates certainty when an item
  carries many targets;
* a **sign-flip test with the item as the unit**: each item's mean difference, signs flipped at
  random, which does not.

Seeds are fixed: the same runs give the same figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from pluralign.evaluation.metrics import Decision
from pluralign.evaluation.runs import RunDir
from pluralign.support.errors import InputError

BOOTSTRAP = 2000
SIGN_FLIPS = 10_000


def correctness(run: RunDir, targets: Sequence[str], n_items: int | None = None) -> np.ndarray:
    """items x targets: 1 right, 0 wrong, NaN skipped (all tied), failed or not run."""
    return decision_matrix(run.decisions(), targets, n_items)


def decision_matrix(decisions: Sequence[Decision], targets: Sequence[str], n_items: int | None = None) -> np.ndarray:
    """:func:`correctness` of decisions held in memory (a run graded again, for one)."""
    size = n_items if n_items is not None else 1 + max((d.item for d in decisions), default=-1)
    out = np.full((size, len(targets)), np.nan)
    col = {t: j for j, t in enumerate(targets)}
    for d in decisions:
        if d.target in col and d.item < size and not d.skipped and d.failed is None and d.chosen is not None:
            out[d.item, col[d.target]] = float(d.chosen in d.correct)
    return out


def mean_over_targets(m: np.ndarray) -> float:
    """Mean over the targets that have a scored decision of each target's accuracy, in percent
    (a target with none is left out); NaN when nothing is scored."""
    scored = ~np.isnan(m).all(axis=0)
    if not scored.any():
        return float("nan")
    return float(np.nanmean(np.nanmean(m[:, scored], axis=0)) * 100)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    """(only A right, only B right, two-sided exact p) over the cells both have."""
    both = ~np.isnan(a) & ~np.isnan(b)
    only_a = int(((a == 1) & (b == 0) & both).sum())
    only_b = int(((a == 0) & (b == 1) & both).sum())
    n = only_a + only_b
    if n == 0:
        return only_a, only_b, 1.0
    k = min(only_a, only_b)
    return only_a, only_b, min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def sign_flip(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, draws: int = SIGN_FLIPS) -> float:
    """Two-sided p of a paired sign-flip test with the item as the unit (rows of ``a`` and ``b``)."""
    diff = a - b
    counts = (~np.isnan(diff)).sum(axis=1)
    d = np.nansum(diff, axis=1)[counts > 0] / counts[counts > 0]  # items with no cell both have: none
    if len(d) == 0:
        return float("nan")
    observed = abs(d.mean())
    flipped = np.abs((rng.choice([-1.0, 1.0], size=(draws, len(d))) * d).mean(axis=1))
    return float((1 + (flipped >= observed - 1e-12).sum()) / (1 + draws))


def p_text(p: float) -> str:
    """A p value as shown: three significant digits, or "<0.0001"."""
    return "<0.0001" if p < 0.0001 else f"{p:.3g}"


class PairedComparison(BaseModel):
    """A minus B on the cells both runs have (percentage points; p values unrounded)."""

    difference: float
    ci95: tuple[float, float]
    only_a_right: int
    only_b_right: int
    mcnemar_p: float
    sign_flip_p: float
    items: int
    decisions: int


def paired(a: np.ndarray, b: np.ndarray, resamples: np.ndarray, flip_seed: int = 0) -> PairedComparison:
    """``a`` minus ``b`` (items x targets); ``resamples`` holds the bootstrap's rows of item indexes."""
    both = ~np.isnan(a) & ~np.isnan(b)
    a, b = np.where(both, a, np.nan), np.where(both, b, np.nan)
    diffs = [mean_over_targets(a[idx]) - mean_over_targets(b[idx]) for idx in resamples]
    only_a, only_b, p = mcnemar(a.ravel(), b.ravel())
    item_p = sign_flip(a, b, np.random.default_rng(flip_seed))  # its own draws: the bootstrap's stay as they were
    return PairedComparison(
        difference=round(mean_over_targets(a) - mean_over_targets(b), 2),
        ci95=(round(float(np.nanpercentile(diffs, 2.5)), 2), round(float(np.nanpercentile(diffs, 97.5)), 2)),
        only_a_right=only_a,
        only_b_right=only_b,
        mcnemar_p=p,
        sign_flip_p=item_p,
        items=int(both.any(axis=1).sum()),
        decisions=int(both.sum()),
    )


class RunComparison(BaseModel):
    """Two runs on the same benchmark: each one's accuracy on the shared cells, and A minus B."""

    a: str
    b: str
    targets: list[str]
    accuracy_a: float
    accuracy_b: float
    comparison: PairedComparison


def compare_runs(path_a: str, path_b: str, seed: int = 0, resamples: int = BOOTSTRAP) -> RunComparison:
    """A minus B over the targets and items both runs decided; refused (InputError) when the runs
    judged different benchmarks or share no target."""
    run_a, run_b = RunDir(path_a), RunDir(path_b)
    bench_a, bench_b = run_a.identity().get("benchmark"), run_b.identity().get("benchmark")
    if bench_a is not None and bench_b is not None and bench_a != bench_b:
        raise InputError(f"{path_a} and {path_b} judged different benchmarks; a paired comparison needs the same items")
    names_a = [t.name for t in run_a.results().targets]
    targets = [t.name for t in run_b.results().targets if t.name in names_a]
    if not targets:
        raise InputError(f"{path_a} and {path_b} have no target in common")
    a, b = correctness(run_a, targets), correctness(run_b, targets)
    rows = max(len(a), len(b))
    a = np.vstack([a, np.full((rows - len(a), len(targets)), np.nan)])
    b = np.vstack([b, np.full((rows - len(b), len(targets)), np.nan)])
    shared = np.flatnonzero((~np.isnan(a) & ~np.isnan(b)).any(axis=1))
    if len(shared) == 0:
        raise InputError(f"{path_a} and {path_b} decided no item in common")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(shared), size=(resamples, len(shared)))
    both = ~np.isnan(a[shared]) & ~np.isnan(b[shared])
    return RunComparison(
        a=str(path_a),
        b=str(path_b),
        targets=targets,
        accuracy_a=round(mean_over_targets(np.where(both, a[shared], np.nan)), 2),
        accuracy_b=round(mean_over_targets(np.where(both, b[shared], np.nan)), 2),
        comparison=paired(a[shared], b[shared], idx, flip_seed=seed),
    )
