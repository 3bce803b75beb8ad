"""Export and import a whole study as OpenAI Batch files, without a judge.

The paper's HelpSteer2 study for one method: 500 eval items, 5 attributes, 5 samples (12,500
requests), all 52 targets (high, low and the 50 sampled) sharing the scores. Times
``pluralign eval --backend batch`` (the export), writes a results file answering every
request with a valid judgement (what vLLM would write; no model runs), times
``pluralign batch import``, then the rerun that completes from the cache, and prints the
file sizes.

    python bench/batch_scale.py --out bench/results/batch_scale.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import named_path

from pluralign.evaluation.runs import RunDir

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SHARED = ROOT.parent / "shared" / "data"


def pluralign(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pluralign", *args], capture_output=True, text=True)
    return time.perf_counter() - t0, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=named_path, default=ROOT / "bench" / "runs" / "batch_scale")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--out", type=named_path, default=None)
    args = parser.parse_args()

    from common import header, machine, uptime, write_json

    print(header(), flush=True)
    work = args.work
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    common = (
        "eval", "--benchmark", str(SHARED / "helpsteer2"), "--method", "spm", "--model", "Qwen/Qwen2.5-7B-Instruct",
        "--backend", "batch", "--batch-dir", str(work / "batch"), "--samples", "5", "--limit", str(args.limit),
        "--target", "high", "--target", "low", "--target", str(SHARED / "targets" / "sampled_helpsteer2"),
        "--cache", str(work / "cache.sqlite"), "--out", str(work / "run"),
    )  # fmt: skip
    seconds, proc = pluralign(*common)
    assert proc.returncode == 3, proc.stderr
    files = sorted((work / "batch").glob("requests-*.jsonl"))
    n_requests = sum(1 for f in files for _ in open(f))
    sizes = {f.name: f.stat().st_size for f in files}
    print(
        f"export: {n_requests} requests in {len(files)} file(s), {sum(sizes.values()) / 1e6:.1f} MB, "
        f"{seconds:.1f} s ({uptime()})",
        flush=True,
    )
    # the answers vLLM would write: one valid judgement per request
    t0 = time.perf_counter()
    results = work / "batch" / "results-001.jsonl"
    with open(results, "w") as out:
        for f in files:
            for n, line in enumerate(open(f)):
                req = json.loads(line)
                schema = req["body"]["response_format"]["json_schema"]["schema"]
                answer = {
                    k: {"reasoning": "A stand-in answer for timing.", "score": (7 * n + i) % 101}
                    for i, k in enumerate(schema["required"])
                }
                body = {
                    "choices": [{"message": {"role": "assistant", "content": json.dumps(answer)}}],
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 60},
                }
                out.write(
                    json.dumps(
                        {
                            "id": f"b{n}",
                            "custom_id": req["custom_id"],
                            "response": {"status_code": 200, "request_id": f"r{n}", "body": body},
                            "error": None,
                        }
                    )
                    + "\n"
                )
    print(f"wrote the stand-in results in {time.perf_counter() - t0:.1f} s ({results.stat().st_size / 1e6:.1f} MB)")
    import_seconds, proc = pluralign("batch", "import", str(results), "--cache", str(work / "cache.sqlite"))
    assert proc.returncode == 0, proc.stderr
    print(f"import: {proc.stdout.strip()} in {import_seconds:.1f} s ({uptime()})", flush=True)
    again_seconds, proc = pluralign("batch", "import", str(results), "--cache", str(work / "cache.sqlite"))
    print(f"import again: {again_seconds:.1f} s ({proc.stdout.strip()[:80]}...)", flush=True)
    finish_seconds, proc = pluralign(*common)
    assert proc.returncode == 0, proc.stderr
    decisions = sum(1 for _ in open(RunDir(work / "run").decisions_path))
    print(f"rerun from the cache: {decisions} decisions in {finish_seconds:.1f} s ({uptime()})", flush=True)
    if args.out:
        write_json(args.out, {
            "machine": machine(), "requests": n_requests, "request_files": sizes,
            "results_bytes": results.stat().st_size, "export_seconds": round(seconds, 1),
            "import_seconds": round(import_seconds, 1), "import_again_seconds": round(again_seconds, 1),
            "complete_from_cache_seconds": round(finish_seconds, 1), "decisions": decisions,
        })  # fmt: skip


if __name__ == "__main__":
    main()
