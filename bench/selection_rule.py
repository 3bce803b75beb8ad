"""Does choosing by the expected distance under the judge's level probabilities beat choosing by
the distance of the expected values? Both rules applied to the same assessments of each committed
study run (no model call), compared item by item.

    python bench/selection_rule.py [--runs bench/runs/evidence] [--out bench/results/selection_rule.json]

Prints, per method, the accuracy by each rule (mean over targets), expected minus closest with a
95% paired bootstrap interval over items, McNemar's p and the sign-flip p with the item as unit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import header, named_path, uptime, write_json

from pluralign.evaluation.grading import regrade
from pluralign.evaluation.runs import is_run
from pluralign.evaluation.statistics import BOOTSTRAP, decision_matrix, mean_over_targets, p_text, paired

ROOT = Path(__file__).resolve().parent.parent


def matrix(run: Path, selection: str) -> np.ndarray:
    """items x targets, right or wrong, with every choice made again by ``selection``."""
    grouped, targets, _ = regrade(run, selection=selection)
    return decision_matrix([d for rows in grouped.values() for d in rows], sorted(targets))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=named_path, default=ROOT / "bench" / "runs" / "evidence")
    ap.add_argument("--out", type=named_path, default=None)
    args = ap.parse_args()
    print(header(), flush=True)
    rows = []
    for run in sorted(p for p in args.runs.iterdir() if is_run(p)):
        closest = matrix(run, "closest")
        expected = matrix(run, "expected")
        rng = np.random.default_rng(0)
        resamples = rng.integers(0, closest.shape[0], size=(BOOTSTRAP, closest.shape[0]))
        c = paired(expected, closest, resamples)
        row = {
            "method": run.name,
            "closest": round(mean_over_targets(closest), 2),
            "expected": round(mean_over_targets(expected), 2),
            **c.model_dump(),
        }
        rows.append(row)
        print(
            f"{run.name:15s} closest {row['closest']:6.2f}  expected {row['expected']:6.2f}  "
            f"difference {c.difference:+.2f} ({c.ci95[0]:+.2f} to {c.ci95[1]:+.2f})  "
            f"only expected / only closest right {c.only_a_right} / {c.only_b_right}  "
            f"McNemar p {p_text(c.mcnemar_p)}  sign-flip p {p_text(c.sign_flip_p)}",
            flush=True,
        )
    print(uptime(), flush=True)
    if args.out:
        write_json(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
