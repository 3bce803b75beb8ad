"""Which method chooses best? HelpSteer2 at a size that decides.

The 100 shortest HelpSteer2 eval items whose two responses' labels are not all equal; all 5
attributes scored once per item, so the 52 targets (high, low and the paper's 50 sampled)
share the scores. spm, spm-zeroshot, regression and unaligned with the default offline
judge; prompt-aligned (target-dependent, so one assessment per target) on high and low only;
embedding, the length baseline (each attribute a line in log length, no model) and random for
reference; each method's length control (pluralign metrics --benchmark) below the table.

Reported per method: accuracy (mean over its targets) with a 95% interval from resampling
the items, the paired difference to spm on the same items and targets (bootstrap over
items) with McNemar's exact test on the pooled item x target decisions and a sign-flip test
with the item as the unit, MSE per attribute, and judge time. Every method's run folder is
resumable: stop it any time and run the same command again.

    python bench/evidence.py --threads 1                     # runs and writes bench/results/evidence.{md,json,png}
    python bench/evidence.py --report-only                   # tabulate what the run folders hold now
    python bench/evidence.py --methods random,embedding      # a part (the report keeps every method's row)

The run folders live in bench/runs/evidence/ and are committed as they grow (their assessments
and decisions packed as .jsonl.gz by bench/pack_runs.py, and their results; not the call logs,
the cache or the derived input_output/ folders), so the study resumes on any machine. They hold
the default offline judge's study; the same study with a larger judge behind any
OpenAI-compatible server (vLLM, SGLang, llama.cpp's server) names its own folders:

    python bench/evidence.py --backend openai --base-url http://HOST:8000/v1 --model Qwen/Qwen2.5-72B-Instruct \
        --runs bench/runs/evidence-72b --out bench/results/evidence-72b
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from common import named_path

from pluralign.evaluation.statistics import mean_over_targets
from pluralign.evaluation.statistics import p_text as p_cell
from pluralign.support.errors import InputError, PluralignError, one_line

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "data"
METHODS = "random,length,embedding,unaligned,spm-zeroshot,spm,regression,prompt-aligned"
BOOT = 2000
DEFAULT_RUNS = ROOT / "bench" / "runs" / "evidence"
DEFAULT_OUT = ROOT / "bench" / "results" / "evidence"


def pick(bench, n, attributes=None):
    def key(labels):
        return {a: v for a, v in labels.items() if attributes is None or a in attributes}

    differ = [p for p in bench.eval if key(p.labels[0]) != key(p.labels[1])]
    ranked = sorted(differ, key=lambda p: len(p.question) + sum(len(r) for r in p.responses))
    return bench.subset(ranked[:n])


def matrix(run: Path, targets: list[str], n_items: int) -> np.ndarray:
    """items x targets: 1 right, 0 wrong, nan skipped (all tied), failed or not run."""
    from pluralign.evaluation.runs import RunDir
    from pluralign.evaluation.statistics import correctness

    return correctness(RunDir(run), targets, n_items)


def cell(value: float | None, fmt: str) -> str:
    """A table cell: '-' where there is nothing to show."""
    return "-" if value is None or np.isnan(value) else format(value, fmt)


def group_of(target) -> str:  # type: ignore[no-untyped-def]
    """high, low, or the number of attributes of a sampled target."""
    return target.name if target.name in ("high", "low") else f"{len(target.values)} attr"


def decided_items(run: Path) -> int:
    """How many items the folder's decisions cover (0 for a run not yet finished once)."""
    from pluralign.evaluation.runs import RunDir

    folder = RunDir(run)
    return len({d.item for d in folder.decisions()}) if folder.finished() else 0


JUDGE_FLAGS = ("backend", "model", "estimator", "samples", "temperature", "example_max_chars")
"""What changes the committed study's answers (the judge, its scoring, its examples)."""


def judge_values(args) -> dict:  # type: ignore[no-untyped-def]
    """The sweep's options; each method takes the ones it reads (random and embedding none of the judge's)."""
    return {
        **{flag: getattr(args, flag) for flag in JUDGE_FLAGS},
        "base_urls": args.base_url,
        "judge_api_key_env": args.judge_api_key_env,
        "concurrency": args.concurrency,
        "threads": args.threads,
        "cache_path": args.runs / "cache.sqlite",
    }


def check_folders(args, parser: argparse.ArgumentParser) -> None:  # type: ignore[no-untyped-def]
    """Another judge's study never lands in (or is refused by) the default judge's committed folders."""
    from pluralign.prediction.judges import DEFAULT_MODEL

    changed = [
        f"--{flag.replace('_', '-')}"
        for flag in JUDGE_FLAGS
        if getattr(args, flag) != parser.get_default(flag) and not (flag == "model" and args.model == DEFAULT_MODEL)
    ]
    committed = args.runs.resolve() == DEFAULT_RUNS or args.out.resolve() == DEFAULT_OUT
    if changed and committed and not args.report_only:
        raise InputError(
            f"{DEFAULT_RUNS.relative_to(ROOT)} holds the default judge's study; "
            f"name --runs and --out for a study with {' '.join(changed)}"
        )


def run_rounds(args, bench, all_targets, methods, attributes) -> None:  # type: ignore[no-untyped-def]
    """Every method on the first ``step`` items, then the next ``step``, ...: the methods grow
    together, so a stop at any time leaves comparable partial results. Items already judged
    in a run folder are never judged again (each round resumes the folder), and a round no
    larger than what a folder's decisions cover leaves that folder as it is."""
    from common import settings_for, uptime

    from pluralign.evaluation.evaluate import evaluate
    from pluralign.settings import build_method

    built = {}
    try:
        for limit in range(args.step, len(bench.eval) + args.step, args.step):
            limit = min(limit, len(bench.eval))
            for method in methods:
                if decided_items(args.runs / method) >= limit:
                    continue  # a round below what the folder holds would rewrite its decisions with fewer items
                targets = all_targets
                if method == "prompt-aligned" and not attributes:
                    targets = [t for t in all_targets if t.name in ("high", "low")]
                if method not in built:
                    built[method] = build_method(
                        method, settings_for(method, judge_values(args), benchmark_dir=bench.path)
                    )
                t0 = time.perf_counter()
                evaluate(
                    bench,
                    built[method],
                    targets,
                    args.runs / method,
                    limit=limit,
                    on_progress=lambda d, t, m=method, t0=t0, n=limit: print(
                        f"{m}: item {d}/{t} of the first {n}, {time.perf_counter() - t0:.0f} s ({uptime()})",
                        flush=True,
                    ),
                )
    finally:
        for meth in built.values():
            meth.close()


def paired(a: np.ndarray, b: np.ndarray, resamples: np.ndarray) -> dict:
    """Reference minus method on the items and targets both have (pluralign compare's figures)."""
    from pluralign.evaluation.statistics import paired as compare

    c = compare(a, b, resamples)
    return {
        "difference": c.difference,
        "ci95": list(c.ci95),
        "only_reference_right": c.only_a_right,
        "only_this_right": c.only_b_right,
        "mcnemar_p": round(c.mcnemar_p, 4),
        "sign_flip_p": round(c.sign_flip_p, 4),
    }


def summarise(args, bench, all_targets, methods) -> tuple[list[dict], dict]:  # type: ignore[no-untyped-def]
    """One row per method from what its run folder holds now (partial runs included, with the
    number of items they cover)."""
    from pluralign.evaluation.runs import RunDir

    names = [t.name for t in all_targets]
    groups = {
        g: [j for j, t in enumerate(all_targets) if group_of(t) == g] for g in dict.fromkeys(map(group_of, all_targets))
    }
    mats = {}
    for method in methods:
        run = RunDir(args.runs / method)
        if run.finished():
            mats[method] = matrix(args.runs / method, names, len(bench.eval))
    items = {m: int((~np.isnan(x)).any(axis=1).sum()) for m, x in mats.items()}
    covered = {m: np.flatnonzero((~np.isnan(x)).any(axis=1)) for m, x in mats.items()}
    rows = []
    for method, m in mats.items():
        rng = np.random.default_rng(zlib.crc32(method.encode()))  # per row: one row's draws never move another's
        results = RunDir(args.runs / method).results()
        extra = results.model_extra or {}
        own = m[covered[method]]
        resamples = rng.integers(0, len(own), size=(BOOT, len(own)))
        boots = [mean_over_targets(own[idx]) for idx in resamples]
        mse: dict[str, list[float]] = {}
        for t in results.targets:
            for a, v in (t.mse or {}).items():
                mse.setdefault(a, []).append(v)
        row = {
            "method": method,
            "items": items[method],
            "targets": int((~np.isnan(m)).any(axis=0).sum()),
            "decisions": int((~np.isnan(m)).sum()),
            "accuracy": round(mean_over_targets(m), 2),
            "ci95": [round(float(np.percentile(boots, 2.5)), 2), round(float(np.percentile(boots, 97.5)), 2)],
            "by_group": {
                g: round(mean_over_targets(m[:, cols]), 2)
                for g, cols in groups.items()
                if not np.isnan(m[:, cols]).all()
            },
            "mse": {a: round(float(np.mean(v)), 4) for a, v in mse.items()} or None,
            "llm_calls": extra.get("llm_calls"),
            "llm_seconds": extra.get("llm_seconds"),
            "n_failed": results.n_failed,
        }
        if args.reference in mats and method != args.reference:
            shared = np.intersect1d(covered[args.reference], covered[method])
            idx = rng.integers(0, len(shared), size=(BOOT, len(shared)))
            row["reference_minus_this"] = paired(mats[args.reference][shared], m[shared], idx)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows, groups


def table(rows: list[dict], reference: str, scope: str, n_items: int) -> str:
    lines = [
        f"The {n_items} shortest HelpSteer2 eval items whose labels differ; {scope}. "
        "Items: how many of them the method's run holds so far (partial runs are partial, never extrapolated).",
        "",
        f"| method | items | accuracy % | 95% CI (items) | decisions | {reference} minus method | 95% CI "
        f"| only {reference} / only method right | McNemar p | sign-flip p (items) | mean MSE | judge s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        d = r.get("reference_minus_this")
        mse = f"{np.mean(list(r['mse'].values())):.4f}" if r["mse"] else "-"
        secs = f"{r['llm_seconds']:.0f}" if r.get("llm_seconds") is not None else "-"
        lines.append(
            f"| {r['method']} | {r['items']} | {r['accuracy']:.1f} | {r['ci95'][0]:.1f}-{r['ci95'][1]:.1f} | "
            f"{r['decisions']} | "
            + (
                f"{d['difference']:+.1f} | {d['ci95'][0]:+.1f} to {d['ci95'][1]:+.1f} | "
                f"{d['only_reference_right']} / {d['only_this_right']} | {p_cell(d['mcnemar_p'])} | "
                f"{p_cell(d['sign_flip_p'])} | "
                if d
                else "- | - | - | - | - | "
            )
            + f"{mse} | {secs} |"
        )
    group_names = list(dict.fromkeys(g for r in rows for g in r["by_group"]))
    lines += ["", "| method | " + " | ".join(group_names) + " |", "|---" * (len(group_names) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['method']} | " + " | ".join(cell(r["by_group"].get(g), ".1f") for g in group_names) + " |")
    mse_rows = [r for r in rows if r["mse"]]
    if mse_rows:
        attrs = list(mse_rows[0]["mse"])
        lines += ["", "| method | " + " | ".join(f"MSE {a}" for a in attrs) + " |", "|---" * (len(attrs) + 1) + "|"]
        for r in mse_rows:
            lines.append(f"| {r['method']} | " + " | ".join(cell(r["mse"].get(a), ".4f") for a in attrs) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Accuracy by number of target attributes, one line per method (integer ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        points = sorted((int(g.split()[0]), v) for g, v in r["by_group"].items() if g.endswith("attr"))
        if points:
            ax.plot(
                [k for k, _ in points], [v for _, v in points], marker="o", label=f"{r['method']} ({r['items']} items)"
            )
    ax.axhline(50, color="grey", lw=0.5, ls=":")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("attributes in the target")
    ax.set_ylabel("alignment accuracy %")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def length_sections(runs: Path, bench, methods: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Each method's length control (pluralign.evaluation.length_control) on the study's items."""
    from pluralign.evaluation.length_control import for_run, markdown

    lines = ["## Length control", ""]
    for method in methods:
        lines += markdown(for_run(runs / method, bench, items=bench.eval), method)
    return lines


def calibrated_section(runs: Path, methods: list[str]) -> list[str]:
    """The judge methods chosen again from calibrated predictions (bench/calibration_study.py):
    cross-validated on the study's items, and out of sample once enough train items are judged."""
    from calibration_study import calibrated_rows

    _, lines, left_out = calibrated_rows(runs, methods)
    if len(lines) <= 2 and not left_out:
        return []
    return [
        "## Calibrated",
        "",
        "Each judge method's run chosen again after a per-attribute monotone map from its predictions to the",
        "labels (`pluralign calibrate`), fit on the other folds of these items, or on train items judged by",
        "bench/calibration_study.py (never these items). Difference: calibrated minus as it was, paired by item.",
        "",
        *lines,
        "",
        *left_out,
        *([""] if left_out else []),
    ]


def report_methods(runs: Path, methods: list[str]) -> list[str]:
    """The methods run now and every other with a folder under ``runs``, in the study's order: a
    run of one method rewrites the report, and must not drop the rows the others have earned."""
    order = METHODS.split(",")
    present = {d.name for d in runs.iterdir() if d.is_dir()} if runs.is_dir() else set()
    return sorted(set(methods) | present, key=lambda m: (order.index(m) if m in order else len(order), m))


def main() -> None:
    from common import positive_int

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", type=named_path, default=SHARED / "helpsteer2")
    parser.add_argument("--items", type=positive_int, default=100)
    parser.add_argument("--step", type=positive_int, default=5, help="items added to every method per round")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--runs", type=named_path, default=DEFAULT_RUNS)
    parser.add_argument("--example-max-chars", type=int, default=600)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (llamacpp backend)")
    parser.add_argument("--backend", default="llamacpp", help="the judge's backend: llamacpp or openai")
    parser.add_argument("--model", default=None, help="the judge (default: the backend's default model)")
    parser.add_argument("--base-url", action="append", default=[], help="OpenAI-compatible server; repeat for replicas")
    parser.add_argument("--judge-api-key-env", default=None, help="environment variable holding the server's key")
    parser.add_argument(
        "--concurrency", type=positive_int, default=None, help="concurrent requests per server (openai)"
    )
    parser.add_argument("--estimator", default=None, help="auto (the backend's default), sample or logprobs")
    parser.add_argument("--samples", type=positive_int, default=None, help="passes per attribute (--estimator sample)")
    parser.add_argument("--temperature", type=float, default=None, help="sampling temperature (--estimator sample)")
    parser.add_argument("--report-only", action="store_true", help="only tabulate the runs that exist")
    parser.add_argument(
        "--attributes",
        default="",
        help="a smaller study: only these attributes, with the corner targets over them (all 0/1 combinations)",
    )
    parser.add_argument("--reference", default="spm", help="the method every other is compared with")
    parser.add_argument("--out", type=named_path, default=DEFAULT_OUT)
    args = parser.parse_args()
    try:
        check_folders(args, parser)
        study(args)
    except PluralignError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        sys.exit(2)


def study(args) -> None:  # type: ignore[no-untyped-def]
    from common import header, machine, output, uptime, write_json, write_text

    from pluralign.choice.attributes import DEFAULT_REGISTRY as R
    from pluralign.choice.target_data import profile_from_data, resolve_target_specs
    from pluralign.choice.targets import all_target_combinations
    from pluralign.evaluation.data.benchmark import load_benchmark

    print(header(), flush=True)
    attributes = [a for a in args.attributes.split(",") if a] or None
    bench = pick(load_benchmark(args.benchmark), args.items, attributes)
    if attributes:
        corners = all_target_combinations(attributes, 2)
        all_targets = [profile_from_data(c, "-".join(f"{a}{v:g}" for a, v in c.items()), R) for c in corners]
        scope = f"the {len(all_targets)} corner targets over {', '.join(attributes)}"
    else:
        specs = ["high", "low", str(SHARED / "targets" / "sampled_helpsteer2")]
        all_targets = resolve_target_specs(specs, bench.attributes)
        scope = f"{len(all_targets)} targets (prompt-aligned: high and low only)"
    methods = [m for m in args.methods.split(",") if m]
    if not args.report_only:
        run_rounds(args, bench, all_targets, methods, attributes)
    rows, _ = summarise(args, bench, all_targets, report_methods(args.runs, methods))
    text = table(rows, args.reference, scope, len(bench.eval))
    text += "\n" + "\n".join(length_sections(args.runs, bench, [r["method"] for r in rows]))
    text += "\n" + "\n".join(calibrated_section(args.runs, [r["method"] for r in rows]))
    print(text, flush=True)
    print(uptime(), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(output(args.out, ".md"), text)
    plot(rows, output(args.out, ".png"))
    write_json(output(args.out, ".json"), {"machine": machine(), "items": len(bench.eval), "rows": rows})


if __name__ == "__main__":
    main()
