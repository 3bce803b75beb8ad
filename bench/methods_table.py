"""Accuracy, error and cost of every method on the same HelpSteer2 items and targets.

Runs at full size against a server backend, e.g.
  python bench/methods_table.py --backend openai --base-url http://gpu:8000/v1 --model Qwen/Qwen2.5-7B-Instruct \
      --items 500 --samples 5 --targets paper
On a 2-core CPU with Qwen2.5-Coder-1.5B, use a small slice (--items 6 --shortest).
Each method's run directory is resumable; the table is rewritten after every method.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import output, settings_for, write_json, write_text

from pluralign.choice.target_data import resolve_target_specs
from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.data import load_benchmark
from pluralign.evaluation.data.benchmark import Benchmark
from pluralign.evaluation.evaluate import evaluate
from pluralign.evaluation.metrics import bootstrap_ci
from pluralign.evaluation.runs import RunDir
from pluralign.settings import Settings, build_method

LLM = ["spm", "spm-zeroshot", "regression", "unaligned", "prompt-aligned"]
CHEAP = ["embedding", "random"]


def corner_targets(attrs: list[str]) -> list[AlignmentTarget]:
    """Every high/low combination of the given attributes (4 targets for 2 attributes)."""
    out = []
    for mask in range(2 ** len(attrs)):
        values = {a: float((mask >> i) & 1) for i, a in enumerate(attrs)}
        name = "_".join(f"{a[:4]}{'H' if v else 'L'}" for a, v in values.items())
        out.append(AlignmentTarget(name=name, values=values))
    return out


def pick_items(bench: Benchmark, n: int, shortest: bool, attrs: list[str]) -> Benchmark:
    items = list(bench.eval)
    if shortest:
        differs = [p for p in items if any(p.labels[0][a] != p.labels[1][a] for a in attrs)]  # type: ignore[index]
        items = sorted(differs, key=lambda p: len(p.question) + sum(len(r) for r in p.responses))
    return bench.subset(items[:n])


def row(method: str, summary, results_file: Path) -> dict:  # type: ignore[no-untyped-def]
    run = RunDir(results_file.parent)
    flags = [d.chosen in d.correct for d in run.decisions() if not d.skipped and d.failed is None]
    mses = [np.mean(list(r.mse.values())) for r in summary.results if r.mse]
    saved = run.results().model_dump()
    return {
        "method": method,
        "accuracy": 100 * float(np.mean(flags)) if flags else None,
        "ci95": bootstrap_ci(flags),
        "n_scored": len(flags),
        "mse": float(np.mean(mses)) if mses else None,
        "llm_calls": saved["llm_calls"],
        "prompt_tokens": saved["prompt_tokens"],
        "completion_tokens": saved["completion_tokens"],
        "wall_s": saved["wall_seconds"],
        "llm_s": saved.get("llm_seconds"),
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| method | accuracy % | 95% CI | scored (item x target) | MSE | LLM calls | prompt tok | completion tok"
        " | LLM s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = f"{r['ci95'][0]:.1f}-{r['ci95'][1]:.1f}" if r["ci95"] else "-"
        acc = f"{r['accuracy']:.1f}" if r["accuracy"] is not None else "-"
        mse = f"{r['mse']:.4f}" if r["mse"] is not None else "-"
        llm_s = f"{r['llm_s']:.0f}" if r.get("llm_s") is not None else "-"
        lines.append(
            f"| {r['method']} | {acc} | {ci} | {r['n_scored']} | {mse} | {r['llm_calls']} | "
            f"{r['prompt_tokens']} | {r['completion_tokens']} | {llm_s} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default="../shared/data/helpsteer2")
    ap.add_argument("--items", type=int, default=6)
    ap.add_argument("--shortest", action="store_true", help="take the shortest items whose labels differ")
    ap.add_argument("--attributes", default="helpfulness,verbosity")
    ap.add_argument(
        "--targets", default="corners", help="'corners' of --attributes, or 'paper' (high, low, 50 sampled)"
    )
    ap.add_argument("--methods", default=",".join(LLM + CHEAP))
    ap.add_argument("--backend", default="llamacpp")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--base-url", action="append", default=[])
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--example-max-chars", type=int, default=300)
    ap.add_argument("--similarity", default="embedding")
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--append", action="store_true", help="add rows to an existing table")
    ap.add_argument("--out", default="bench/results/methods_table")
    ap.add_argument("--runs", default="bench/runs/methods")
    ap.add_argument(
        "--embedding-full",
        action="store_true",
        help="also run the embedding scorer on the whole eval set and all 52 targets",
    )
    args = ap.parse_args()

    bench = load_benchmark(args.benchmark)
    attrs = [a.strip() for a in args.attributes.split(",")]
    if args.targets == "corners":
        targets = corner_targets(attrs)
    else:
        shared = Path(args.benchmark).resolve().parent / "targets"
        targets = resolve_target_specs(["high", "low", str(shared / "sampled_helpsteer2")], bench.attributes)
    sliced = pick_items(bench, args.items, args.shortest, attrs)
    rows: list[dict] = []
    out = Path(args.out)
    if args.append and output(out, ".json").exists():
        rows = json.loads(output(out, ".json").read_text())["rows"]
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    for spec in args.methods.split(","):
        # a method, or method/scoring/samples, e.g. spm-zeroshot/logprobs/1
        name, scoring, n = [*spec.split("/"), "sample", str(args.samples)][:3]
        wanted = {
            "backend": args.backend,
            "model": args.model,
            "base_urls": args.base_url,
            "samples": int(n) if scoring == "sample" else None,
            "estimator": scoring,
            "example_max_chars": args.example_max_chars,
            "similarity": args.similarity,
            "cache": False,
            "n_ctx": args.n_ctx,
        }
        settings = settings_for(name, wanted, benchmark_dir=bench.path)
        method = build_method(name, settings)
        label = spec.replace("/", " ")
        t0 = time.time()
        try:
            summary = evaluate(
                sliced,
                method,
                targets,
                Path(args.runs) / spec.replace("/", "-"),
                seed=0,
                on_progress=lambda d, t, n=label, t0=t0: print(
                    f"{n}: {d}/{t} items ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True
                ),
            )
        finally:
            method.close()
        rows.append(row(label, summary, RunDir(Path(args.runs) / spec.replace("/", "-")).results_path))
        header = (
            f"{len(sliced.eval)} HelpSteer2 eval items{' (shortest with differing labels)' if args.shortest else ''}, "
            f"{len(targets)} targets over {', '.join(sorted({a for t in targets for a in t.values}))}; "
            f"backend {args.backend}, model {args.model}, samples {args.samples} unless the method names its own "
            "(method scoring samples), examples clipped to "
            f"{args.example_max_chars} chars, similarity {args.similarity}; total {time.time() - started:.0f} s"
        )
        text = f"{header}\n\n{table(rows)}\n"
        write_text(output(out, ".md"), text)
        write_json(output(out, ".json"), {"setup": vars(args), "header": header, "rows": rows})
        print(text, flush=True)
    if args.embedding_full:
        targets52 = resolve_target_specs(
            ["high", "low", str(Path(args.benchmark).resolve().parent / "targets" / "sampled_helpsteer2")],
            bench.attributes,
        )
        for kind in ("ridge", "knn"):
            method = build_method("embedding", Settings(benchmark_dir=bench.path, regressor=kind))
            summary = evaluate(bench, method, targets52, Path(args.runs) / f"embedding-{kind}-full", seed=0)
            r = row(
                f"embedding ({kind}), all 500 items x 52 targets",
                summary,
                RunDir(Path(args.runs) / f"embedding-{kind}-full").results_path,
            )
            rows.append(r)
        text = f"{header}\n\n{table(rows)}\n"
        write_text(output(out, ".md"), text)
        print(text, flush=True)


if __name__ == "__main__":
    main()
