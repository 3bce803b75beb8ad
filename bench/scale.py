"""What target-independent scoring, the judgement cache and resumable runs buy.

  python bench/scale.py [--items 20] [--model smollm2-135m] [--naive-targets 1]

1. One run for all 52 HelpSteer2 targets (high, low, 50 sampled): each item is scored once
   per attribute in the union, then selected for every target.
2. The paper's way, one run per target with no cache, timed on the first --naive-targets
   targets (the full 52 would take hours here); its request count for all 52 is counted.
3. The same 52-target run again: everything from the cache.
4. Time outside the LLM as a share of the total.
5. Resume after a forced kill (SIGKILL mid-run): items kept, items redone, final decisions equal.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import write_text

from pluralign.choice.target_data import resolve_target_specs
from pluralign.evaluation.data import load_benchmark
from pluralign.evaluation.evaluate import evaluate
from pluralign.evaluation.runs import RunDir
from pluralign.settings import Settings, build_method


def emit(lines: list[str], out: str) -> None:
    """Rewrite the output file after every stage, so a long run that is stopped keeps what it measured."""
    text = "\n".join(lines) + "\n"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(out + ".md"), text)
    print(text, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default="../shared/data/helpsteer2")
    ap.add_argument("--targets", default="../shared/data/targets/sampled_helpsteer2")
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--samples", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.0, help="0 with one sample: SmolLM2 rambles when sampled")
    ap.add_argument("--naive-targets", type=int, default=1)
    ap.add_argument("--work", default="bench/runs/scale")
    ap.add_argument("--out", default="bench/results/scale")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for f in work.glob("*.sqlite*"):
        f.unlink()
    bench = load_benchmark(args.benchmark)
    targets = resolve_target_specs(["high", "low", args.targets], bench.attributes)
    common = dict(
        benchmark_dir=bench.path,
        model=args.model,
        samples=args.samples,
        n_ctx=4096,
        max_tokens=1024,
        temperature=args.temperature,
    )
    lines = [
        f"{args.items} HelpSteer2 eval items, {len(targets)} targets, spm-zeroshot on {args.model} via "
        f"llama.cpp, {args.samples} sample(s) at temperature {args.temperature}; {os.cpu_count()} CPU cores",
        "",
    ]

    # 1. shared scoring, fresh cache
    cache = work / "shared.sqlite"
    method = build_method("spm-zeroshot", Settings(**common, cache_path=cache))
    t0 = time.perf_counter()
    shared = evaluate(bench, method, targets, work / "shared", limit=args.items, overwrite=True)
    shared_s = time.perf_counter() - t0
    outside = shared_s - shared.stats.llm_seconds
    # 3. again, from the cache
    t0 = time.perf_counter()
    again = evaluate(bench, method, targets, work / "again", limit=args.items, overwrite=True)
    again_s = time.perf_counter() - t0
    method.close()

    per_request = shared.stats.llm_seconds / max(shared.stats.requests, 1)
    per_attr = shared.stats.requests / len(bench.attributes)
    naive_all = round(per_attr * sum(len(t.values) for t in targets))
    lines += [
        "| run | LLM requests | model calls (re-asks incl.) | from cache | wall s |",
        "|---|---|---|---|---|",
        f"| all {len(targets)} targets, shared scoring, empty cache | {shared.stats.requests} | {shared.stats.calls} "
        f"| {shared.stats.cached} | {shared_s:.0f} |",
        f"| the same again (cache) | {again.stats.requests} | {again.stats.calls} | {again.stats.cached} "
        f"| {again_s:.1f} |",
    ]
    summary = [
        "",
        f"Requests saved by scoring once for all targets: {naive_all - shared.stats.requests} of {naive_all} "
        f"({100 * (1 - shared.stats.requests / naive_all):.0f}%).",
        f"Time outside the LLM in the shared run: {outside:.1f} s of {shared_s:.0f} s "
        f"({100 * outside / shared_s:.1f}%; goal under 5%).",
    ]
    estimate = (
        f"| one run per target, all {len(targets)} targets (requests counted; time estimated at the shared run's "
        f"{per_request:.1f} s per request) | {naive_all} | - | 0 | ~{naive_all * per_request:.0f} |"
    )
    emit([*lines, estimate, *summary], args.out)

    # 2. the paper's way: one run per target, no cache, timed on the first naive targets
    if args.naive_targets:
        naive = build_method("spm-zeroshot", Settings(**common, cache=False))
        naive_requests = 0
        t0 = time.perf_counter()
        for t in targets[: args.naive_targets]:
            s = evaluate(bench, naive, [t], work / f"naive-{t.name}", limit=args.items, overwrite=True)
            naive_requests += s.stats.requests
        naive_s = time.perf_counter() - t0
        naive.close()
        lines.append(
            f"| one run per target, no cache, first {args.naive_targets} targets (timed) | {naive_requests} | - | 0 "
            f"| {naive_s:.0f} |"
        )
    lines += [estimate, *summary]
    emit(lines, args.out)

    # 5. resume after SIGKILL
    run = work / "killed"
    cmd = [
        sys.executable,
        "-m",
        "pluralign",
        "eval",
        "--benchmark",
        args.benchmark,
        "--method",
        "spm-zeroshot",
        "--model",
        args.model,
        "--samples",
        str(args.samples),
        "--temperature",
        str(args.temperature),
        "--limit",
        str(args.items),
        "--n-ctx",
        "4096",
        "--target",
        "high",
        "--target",
        "low",
        "--target",
        args.targets,
        "--out",
        str(run),
        "--cache",
        str(work / "killed.sqlite"),
        "--overwrite",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ})
    jfile = RunDir(run).judgements_path
    while proc.poll() is None:
        if jfile.exists() and len(jfile.read_text().splitlines()) >= args.items // 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.2)
    proc.wait()
    kept = len(jfile.read_text().splitlines())
    t0 = time.perf_counter()
    subprocess.run(
        [c for c in cmd if c != "--overwrite"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    resume_s = time.perf_counter() - t0
    items = [json.loads(x)["item"] for x in jfile.read_text().splitlines()]
    same = RunDir(run).decisions_path.read_text() == RunDir(work / "shared").decisions_path.read_text()
    lines += [
        "",
        f"Resume: killed (SIGKILL) after {kept} of {args.items} items; the rerun judged "
        f"{len(items) - kept} items in {resume_s:.0f} s; "
        f"items judged exactly once: {sorted(items) == list(range(args.items))}; "
        f"final decisions identical to the uninterrupted shared run: {same}.",
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
