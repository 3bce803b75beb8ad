"""Calibration out of sample: fit on train items the judge assessed, apply to the committed study.

The evidence study (bench/evidence.py) assessed 100 HelpSteer2 eval items. Its cross-validated
calibration (`pluralign calibrate RUN --folds 5`) fits and applies on those same 100 items, fold
by fold; this study fits instead on train items, the way a user would calibrate before choosing:

    python bench/calibration_study.py prepare    # bench/data/helpsteer2_calibration/ (not committed: made again
                                                 # the same from shared/): 100 train items to assess (eval.json)
                                                 # and the other 400 as the examples (train.json)
    python bench/calibration_study.py run        # spm-zeroshot, then spm, 10 items more per round (resumable)
    python bench/calibration_study.py report     # fit on what is assessed, apply to the study: results/calibration.*
    python bench/calibration_study.py unclipped  # what clipping the examples changes (spm's first run judged
                                                 # unclipped ones): results/calibration_unclipped.md
    python bench/calibration_study.py curve      # the gain of a map fit on the first 10, 15, ... train items:
                                                 # results/calibration_curve.* (how much a small fit moves)

The 100 items are chosen the way the study chose its own (the shortest whose two responses'
labels differ), from the train split, so no study item and no example is among them. Each
method is judged with the few-shot settings of the study's run it is applied to (read from that
run: similarity, number and clipping of examples), since a calibration is bound to them. Run
folders are bench/runs/calibration/METHOD, committed as they grow (packed, like the study).
A report needs at least 20 assessed items per method and says how many it used.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from common import header, named_path, uptime, write_json, write_text

if TYPE_CHECKING:
    from pluralign.evaluation.statistics import PairedComparison

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
DATA = ROOT / "bench" / "data" / "helpsteer2_calibration"
RUNS = ROOT / "bench" / "runs" / "calibration"
STUDY = ROOT / "bench" / "runs" / "evidence"
OUT = ROOT / "bench" / "results" / "calibration"
METHODS = ("spm-zeroshot", "spm")
ITEMS = 100
MIN_ITEMS = 20
FOLDS = 5
CALIBRATED = ("spm-zeroshot", "spm", "regression")
"""The study's methods whose predictions are a judge's (what a calibration maps)."""
LONG_CONTEXT = 16384
"""The few-shot prompts of a few train items pass the judge's default 8,192-token context; those
items, and only those (the others are resumed, not judged again), are judged with this one, and
the report says which. Qwen2.5-Coder-1.5B was trained on 32,768."""
OVER_CONTEXT = "but the context holds"


def prepare(source: Path) -> None:
    from pluralign.choice.probes import load_probes, save_probes

    train = load_probes(source / "train.json")
    differ = [p for p in train if p.labels and p.labels[0] != p.labels[1]]
    ranked = sorted(differ, key=lambda p: len(p.question) + sum(len(r) for r in p.responses))[:ITEMS]
    chosen = {id(p) for p in ranked}
    DATA.mkdir(parents=True, exist_ok=True)
    save_probes(DATA / "eval.json", ranked)
    save_probes(DATA / "train.json", [p for p in train if id(p) not in chosen])
    print(f"wrote {DATA}: {len(ranked)} items to assess, {len(train) - len(ranked)} as examples", flush=True)


def run(methods: list[str], step: int, threads: int, source: Path) -> None:
    if not (DATA / "eval.json").exists():
        prepare(source)  # the same files every time: the runs' fingerprints stay valid
    for limit in range(step, ITEMS + step, step):
        for method in methods:
            out = RUNS / method
            args = [sys.executable, "-m", "pluralign", "eval", "--method", method, "--benchmark", str(DATA)]
            args += ["--target", "high", "--limit", str(min(limit, ITEMS)), "--out", str(out)]
            args += ["--threads", str(threads), *study_examples(method)]
            print(f"{method}: {min(limit, ITEMS)} items ({uptime()})", flush=True)
            subprocess.run(args, check=True)
            if again := [item for item in over_context(out) if item < limit]:
                print(f"{method}: items {again} pass the context; again with --n-ctx {LONG_CONTEXT}", flush=True)
                subprocess.run([*args, "--n-ctx", str(LONG_CONTEXT)], check=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / "pack_runs.py"), str(out)], check=True)


EXAMPLE_FLAGS = {"index": "--similarity", "max_examples": "--n-examples", "max_chars": "--example-max-chars"}


def study_examples(method: str, study: Path = STUDY) -> list[str]:
    """The few-shot settings of the study's run of ``method`` (its run's identity), as flags: the
    map is fit for the judge it is applied to (a calibration is refused for another's)."""
    from pluralign.evaluation.runs import RunDir

    examples = (RunDir(study / method).identity().get("method") or {}).get("examples") or {}
    given = [(flag, examples[key]) for key, flag in EXAMPLE_FLAGS.items() if examples.get(key) is not None]
    return [part for flag, value in given for part in (flag, str(value))]


def over_context(path: Path) -> list[int]:
    """Items whose last attempt failed because the prompt passed the context."""
    from pluralign.evaluation.runs import RunDir

    return sorted({item for (item, _), error in RunDir(path).assessments()[1].items() if OVER_CONTEXT in error})


def long_context(path: Path) -> list[int]:
    """Items judged only after their prompt passed the default context (with LONG_CONTEXT)."""
    from pluralign.evaluation.runs import RunDir

    records = RunDir(path).records()  # one read: assessments() would read the records again
    failed = {r.item for r in records if r.error is not None and OVER_CONTEXT in r.error}
    return sorted(failed & {r.item for r in records if r.assessment is not None})


def comparison_cells(c: PairedComparison) -> str:
    """A paired comparison's table cells: difference, 95% interval, sign-flip p."""
    from pluralign.evaluation.statistics import p_text

    return f"{c.difference:+.1f} | {c.ci95[0]:+.1f} to {c.ci95[1]:+.1f} | {p_text(c.sign_flip_p)}"


def calibrated_rows(
    study: Path, methods: list[str], calibration_runs: Path = RUNS
) -> tuple[list[dict], list[str], list[str]]:
    """Each method's run in ``study`` chosen again from calibrated predictions: fit 5-fold on its
    own items (where it has at least 10), and fit on the train items ``calibration_runs`` holds for
    it once there are at least MIN_ITEMS (out of sample), and on as many as the method with the
    fewest holds (the same items, so two judges are compared on equal fits). Rows and a markdown
    table, and a line for each out-of-sample fit left out because its run was judged by
    another judge than the study's (a larger judge's study, other few-shot settings); methods
    without a run or without a judge's predictions are left out."""
    from pluralign.evaluation.calibrate import calibrate_runs, calibration_effect, cross_validate
    from pluralign.evaluation.runs import RunDir
    from pluralign.prediction.calibration import judge_mismatch

    rows: list[dict] = []
    notes: list[str] = []
    lines = ["| method | fit on | accuracy | calibrated | difference | 95% CI | sign-flip p |", "|---" * 7 + "|"]
    runs = {method: RunDir(calibration_runs / method) for method in methods}
    assessed = {method: run.finished_items() if run.finished() else 0 for method, run in runs.items()}
    counts = [n for m, n in assessed.items() if m in CALIBRATED and n >= MIN_ITEMS]
    fewest = min(counts, default=0)  # methods with more are also fit on as many: like with like
    for method in methods:
        if method not in CALIBRATED or not RunDir(study / method).finished():
            continue
        effects = []
        if RunDir(study / method).finished_items() >= 2 * FOLDS:  # fewer cannot fill the folds
            effects.append((f"{FOLDS}-fold on the study's own items", cross_validate(study / method, FOLDS)))
        fits = [(f"{assessed[method]} train items", None)] if assessed[method] >= MIN_ITEMS else []
        if fewest and assessed[method] > fewest:
            fits.insert(0, (f"first {fewest} train items", fewest))
        judge = RunDir(study / method).identity().get("method") or {}  # as calibration_effect reads it
        for fit_on, first in fits:
            fit = calibrate_runs([runs[method].path], first)
            if differ := judge_mismatch(fit.judge, judge):  # another judge's fit: not its row, and said so
                where = f"{calibration_runs.name}/{method}"
                notes.append(f"{method}: no row fit on {fit_on} ({where} was fit for another judge: {differ})")
                break
            effects.append((fit_on, calibration_effect(study / method, fit)))
        for fit_on, e in effects:
            c = e.comparison
            rows.append({"method": method, "fit_on": fit_on, **e.model_dump()})
            lines.append(f"| {method} | {fit_on} | {e.accuracy:.1f} | {e.calibrated:.1f} | {comparison_cells(c)} |")
    return rows, lines, notes


def report() -> None:
    from pluralign.prediction.judges.llamacpp import LlamaCppOptions

    default = LlamaCppOptions.model_fields["n_ctx"].default
    rows, table, left_out = calibrated_rows(STUDY, list(METHODS))
    notes = [
        f"{method}: {len(items)} train item(s) judged with a {LONG_CONTEXT:,}-token context (their few-shot "
        f"prompts pass {default:,}): {', '.join(map(str, items))}"
        for method in METHODS
        if (RUNS / method).is_dir() and (items := long_context(RUNS / method))
    ]
    text = "\n".join([header(), "", *table, "", *left_out, *notes, "", f"({uptime()})"])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    write_text(OUT.with_suffix(".md"), text + "\n")
    write_json(OUT.with_suffix(".json"), rows)
    print(text, flush=True)


CURVE_STEP = 5
CURVE_START = 10
"""The fewest train items a curve's fit uses: a map needs 10 labelled predictions an attribute."""


def curve_rows(study: Path, methods: list[str], calibration_runs: Path = RUNS) -> tuple[list[dict], list[str]]:
    """The gain on the study of each method's map fit on its first 10, 15, ... train items (and on
    all it holds): one look after another at the same study items, so how far a fit of a given
    size moves, not a figure to stop at. Rows and a markdown table; a method whose calibration run
    is another judge's, or missing, is left out."""
    from pluralign.evaluation.calibrate import calibrate_runs, calibration_effect
    from pluralign.evaluation.runs import RunDir
    from pluralign.prediction.calibration import judge_identity, judge_mismatch

    rows: list[dict] = []
    shown: list[str] = []
    for method in methods:
        run, applied = RunDir(calibration_runs / method), RunDir(study / method)
        if method not in CALIBRATED or not run.finished() or not applied.finished():
            continue
        held = run.finished_items()
        fit_judge = judge_identity(run.identity().get("method") or {})  # the judge calibrate_runs binds
        if held < CURVE_START or judge_mismatch(fit_judge, applied.identity().get("method") or {}):
            continue
        shown.append(method)
        for first in sorted({*range(CURVE_START, held + 1, CURVE_STEP), held}):
            c = calibration_effect(applied.path, calibrate_runs([run.path], first)).comparison
            rows.append({"method": method, "train_items": first, **c.model_dump()})
    if not shown:
        return [], []
    cell = {(r["method"], r["train_items"]): r for r in rows}
    lines = ["| train items | " + " | ".join(f"{m}: difference (95% CI)" for m in shown) + " |"]
    lines.append("|---" * (len(shown) + 1) + "|")
    for first in sorted({r["train_items"] for r in rows}):
        found = [cell.get((m, first)) for m in shown]
        cells = [f"{r['difference']:+.1f} ({r['ci95'][0]:+.1f} to {r['ci95'][1]:+.1f})" if r else "-" for r in found]
        lines.append(f"| {first} | " + " | ".join(cells) + " |")
    return rows, lines


def curve() -> None:
    rows, table = curve_rows(STUDY, list(METHODS))
    if not rows:
        raise SystemExit(f"no calibration run of a study judge holds {CURVE_START} items yet")
    intro = (
        "Accuracy on the study's items, calibrated minus as judged (percentage points; 95% interval over "
        "items), of a map fit on the first N train items of bench/runs/calibration. Each row is another "
        "look at the same study items: a curve of how much a small fit moves, not a figure to stop at."
    )
    text = "\n".join([header(), "", intro, "", *table, "", f"({uptime()})"])
    write_text(OUT.with_name("calibration_curve.md"), text + "\n")
    write_json(OUT.with_name("calibration_curve.json"), rows)
    print(text, flush=True)


UNCLIPPED = RUNS / "spm-unclipped"
"""spm's first run (6-7 December, 58 items), judged with unclipped examples where the study clips
them at 600 characters: another judge than the study's, so never a row of the report; kept to
measure what the clipping changes, on the train items both runs judged."""


def unclipped() -> None:
    """What clipping the examples changes: spm's predictions on the train items judged both ways,
    and the gain of a map fit on those items from each run, both applied to the study's spm (the
    unclipped map as it was applied before calibrations were bound to the few-shot settings)."""
    import numpy as np

    from pluralign.evaluation.calibrate import calibrate_runs, calibration_effect
    from pluralign.evaluation.runs import RunDir
    from pluralign.prediction.calibration import judge_identity

    clipped, other = RunDir(RUNS / "spm").assessments()[0], RunDir(UNCLIPPED).assessments()[0]
    both = sorted(key for key in clipped if key in other)
    if not both:
        raise SystemExit("no train item is judged by both runs yet")
    lines = [header(), "", f"{len(both)} train items judged both ways (items {both[0][0]} to {both[-1][0]})", ""]
    lines += ["| attribute | mean prediction, clipped | unclipped | correlation |", "|---|---|---|---|"]
    for attribute in sorted(clipped[both[0]].predictions[0]):
        x = [p[attribute] for key in both for p in clipped[key].predictions]
        y = [p[attribute] for key in both for p in other[key].predictions]
        lines.append(f"| {attribute} | {np.mean(x):.3f} | {np.mean(y):.3f} | {np.corrcoef(x, y)[0, 1]:.2f} |")
    lines += ["", "| map fit on those items, judged with | difference on the study's spm | 95% CI | sign-flip p |"]
    lines.append("|---|---|---|---|")
    study = judge_identity(RunDir(STUDY / "spm").identity()["method"])
    for name, run in (("clipped examples (the study's)", RUNS / "spm"), ("unclipped examples", UNCLIPPED)):
        fit = calibrate_runs([run], len(both)).model_copy(update={"judge": study})  # the unclipped one anyway
        c = calibration_effect(STUDY / "spm", fit).comparison
        lines.append(f"| {name} | {comparison_cells(c)} |")
    text = "\n".join([*lines, "", f"({uptime()})"])
    write_text(OUT.with_name("calibration_unclipped.md"), text + "\n")
    print(text, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step_name", choices=("prepare", "run", "report", "unclipped", "curve"))
    ap.add_argument("--source", type=named_path, default=SHARED / "helpsteer2", help="HelpSteer2 folder (train.json)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--step", type=int, default=10, help="items more per round")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    print(header(), flush=True)
    if args.step_name == "prepare":
        prepare(args.source)
    elif args.step_name == "run":
        run(args.methods.split(","), args.step, args.threads, args.source)
    elif args.step_name == "unclipped":
        unclipped()
    elif args.step_name == "curve":
        curve()
    else:
        report()
    print(json.dumps({"done": args.step_name}), flush=True)


if __name__ == "__main__":
    main()
