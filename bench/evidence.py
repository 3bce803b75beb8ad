"""Which method chooses best? HelpSteer2 at a size that decides.

The 100 shortest HelpSteer2 eval items whose two responses' labels are not all equal; all 5
attributes scored once per item, so the 52 targets (high, low and the paper's 50 sampled)
share the scores. spm, spm-zeroshot, regression and unaligned with the default offline
judge; prompt-aligned (target-dependent, so one judgement per target) on high and low only;
embedding and random for reference.

Reported per method: accuracy (mean over its targets) with a 95% interval from resampling
the items, the paired difference to spm on the same items and targets (bootstrap over
items) with McNemar's exact test on the pooled item x target decisions, MSE per attribute,
and judge time. Every method's run folder is resumable: stop it any time and run the same
command again.

    python bench/evidence.py --out bench/results/evidence            # writes evidence.{md,json}
    python bench/evidence.py --methods random,embedding --items 100  # a part
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "data"
METHODS = "random,embedding,unaligned,spm-zeroshot,spm,regression,prompt-aligned"
BOOT = 2000


def pick(bench, n, attributes=None):
    from pluralign.data.benchmark import Benchmark

    def key(labels):
        return {a: v for a, v in labels.items() if attributes is None or a in attributes}

    differ = [p for p in bench.eval if key(p.labels[0]) != key(p.labels[1])]
    ranked = sorted(differ, key=lambda p: len(p.prompt) + sum(len(r) for r in p.responses))
    return Benchmark(path=bench.path, eval=ranked[:n], train=bench.train)


def matrix(run: Path, targets: list[str], n_items: int) -> np.ndarray:
    """items x targets: 1 right, 0 wrong, nan skipped (all tied), failed or not run."""
    from pluralign.runs import RunDir

    out = np.full((n_items, len(targets)), np.nan)
    col = {t: j for j, t in enumerate(targets)}
    for d in RunDir(run).decisions():
        if d.target in col and not d.skipped and d.failed is None:
            out[d.item, col[d.target]] = float(d.chosen in d.correct)
    return out


def mean_over_targets(m: np.ndarray) -> float:
    with np.errstate(invalid="ignore"):
        per_target = np.nanmean(m, axis=0)
    return float(np.nanmean(per_target) * 100)


def mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[int, int, float]:
    both = ~np.isnan(a) & ~np.isnan(b)
    only_a = int(((a == 1) & (b == 0) & both).sum())
    only_b = int(((a == 0) & (b == 1) & both).sum())
    n = only_a + only_b
    if n == 0:
        return only_a, only_b, 1.0
    k = min(only_a, only_b)
    p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)
    return only_a, only_b, p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", type=Path, default=SHARED / "helpsteer2")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--runs", type=Path, default=ROOT / "bench" / "runs" / "evidence")
    parser.add_argument("--example-max-chars", type=int, default=600)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--report-only", action="store_true", help="only tabulate the runs that exist")
    parser.add_argument(
        "--attributes",
        default="",
        help="a smaller study: only these attributes, with the corner targets over them (all 0/1 combinations)",
    )
    parser.add_argument("--reference", default="spm", help="the method every other is compared with")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "evidence")
    args = parser.parse_args()

    from common import header, machine, settings_for, uptime, write_json

    from pluralign.attributes import DEFAULT_REGISTRY as R
    from pluralign.data.benchmark import load_benchmark
    from pluralign.evaluate import evaluate
    from pluralign.methods import build_method
    from pluralign.runs import RunDir
    from pluralign.targets import all_target_combinations, resolve_target_specs, target_from_data

    print(header(), flush=True)
    attributes = [a for a in args.attributes.split(",") if a] or None
    bench = pick(load_benchmark(args.benchmark), args.items, attributes)
    if attributes:
        corners = all_target_combinations(attributes, 2)
        all_targets = [target_from_data(c, "-".join(f"{a}{v:g}" for a, v in c.items()), R) for c in corners]
        scope = f"the {len(all_targets)} corner targets over {', '.join(attributes)}"
    else:
        specs = ["high", "low", str(SHARED / "targets" / "sampled_helpsteer2")]
        all_targets = resolve_target_specs(specs, bench.attributes)
        scope = f"{len(all_targets)} targets (prompt-aligned: high and low only)"
    names = [t.name for t in all_targets]
    methods = [m for m in args.methods.split(",") if m]
    for method in methods if not args.report_only else []:
        targets = all_targets
        if method == "prompt-aligned" and not attributes:
            targets = [t for t in all_targets if t.name in ("high", "low")]
        settings = settings_for(
            method,
            {
                "example_max_chars": args.example_max_chars,
                "threads": args.threads,
                "cache_path": args.runs / "cache.sqlite",
            },
            benchmark_dir=bench.path,
        )
        meth = build_method(method, settings)
        t0 = time.perf_counter()
        try:
            evaluate(
                bench,
                meth,
                targets,
                args.runs / method,
                on_progress=lambda d, t, m=method, t0=t0: print(
                    f"{m}: {d}/{t} items, {time.perf_counter() - t0:.0f} s ({uptime()})", flush=True
                ),
            )
        finally:
            meth.close()

    rng = np.random.default_rng(0)
    resamples = rng.integers(0, len(bench.eval), size=(BOOT, len(bench.eval)))
    rows, mats = [], {}
    for method in methods:
        run = args.runs / method
        if not RunDir(run).finished():
            continue
        mats[method] = matrix(run, names, len(bench.eval))
    for method, m in mats.items():
        results = RunDir(args.runs / method).results()
        extra = results.model_extra or {}
        boots = [mean_over_targets(m[idx]) for idx in resamples]
        mse: dict[str, list[float]] = {}
        for t in results.targets:
            for a, v in (t.mse or {}).items():
                mse.setdefault(a, []).append(v)
        row = {
            "method": method,
            "targets": int((~np.isnan(m)).any(axis=0).sum()),
            "decisions": int((~np.isnan(m)).sum()),
            "accuracy": round(mean_over_targets(m), 2),
            "ci95": [round(float(np.percentile(boots, 2.5)), 2), round(float(np.percentile(boots, 97.5)), 2)],
            "mse": {a: round(float(np.mean(v)), 4) for a, v in mse.items()} or None,
            "llm_calls": extra.get("llm_calls"),
            "llm_seconds": extra.get("llm_seconds"),
            "n_failed": results.n_failed,
        }
        if args.reference in mats and method != args.reference:
            spm = mats[args.reference]
            cover = ~np.isnan(m).all(axis=0)
            a, b = spm[:, cover], m[:, cover]
            diffs = [mean_over_targets(a[idx]) - mean_over_targets(b[idx]) for idx in resamples]
            only_spm, only_other, p = mcnemar(a.ravel(), b.ravel())
            row["spm_minus_this"] = {
                "difference": round(mean_over_targets(a) - mean_over_targets(b), 2),
                "ci95": [round(float(np.percentile(diffs, 2.5)), 2), round(float(np.percentile(diffs, 97.5)), 2)],
                "only_spm_right": only_spm,
                "only_this_right": only_other,
                "mcnemar_p": round(p, 4),
            }
        rows.append(row)
        print(json.dumps(row), flush=True)

    lines = [
        f"{len(bench.eval)} shortest HelpSteer2 eval items whose labels differ; {scope}",
        "",
        f"| method | accuracy % | 95% CI (items) | decisions | {args.reference} minus method | 95% CI "
        f"| only {args.reference} / only method right | McNemar p | mean MSE | judge s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r.get("spm_minus_this")
        mse = f"{np.mean(list(r['mse'].values())):.4f}" if r["mse"] else "-"
        secs = f"{r['llm_seconds']:.0f}" if r.get("llm_seconds") is not None else "-"
        lines.append(
            f"| {r['method']} | {r['accuracy']:.1f} | {r['ci95'][0]:.1f}-{r['ci95'][1]:.1f} | {r['decisions']} | "
            + (
                f"{d['difference']:+.1f} | {d['ci95'][0]:+.1f} to {d['ci95'][1]:+.1f} | "
                f"{d['only_spm_right']} / {d['only_this_right']} | {d['mcnemar_p']:.3g} | "
                if d
                else "- | - | - | - | "
            )
            + f"{mse} | {secs} |"
        )
    mse_rows = [r for r in rows if r["mse"]]
    if mse_rows:
        attrs = list(mse_rows[0]["mse"])
        lines += ["", "| method | " + " | ".join(f"MSE {a}" for a in attrs) + " |", "|---" * (len(attrs) + 1) + "|"]
        for r in mse_rows:
            cells = " | ".join(f"{r['mse'].get(a, float('nan')):.4f}" for a in attrs)
            lines.append(f"| {r['method']} | {cells} |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    print(uptime(), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    write_json(args.out.with_suffix(".json"), {"machine": machine(), "items": len(bench.eval), "rows": rows})


if __name__ == "__main__":
    main()
