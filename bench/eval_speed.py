"""Time per item of `pluralign eval --method spm` on HelpSteer2 with the default offline judge:
the old tree against the new one in one run (judgement cache off, so every item is judged;
each tree in its own process, one after the other).

  python bench/eval_speed.py --old /path/to/v0.2/src [--items 20] [--out bench/results/eval_speed.json]

The items are the shortest ones whose two responses' labels differ (the evidence study's
first items): the first eval items are long, and v0.2 took 5 minutes on the first one alone.
spm's examples are chosen per item (the paper's similarity rule), so an item's prefix is
new to the judge; what the new tree saves there is reading it once for both response orders,
decoding the passes together and not applying the grammar to the whole vocabulary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import header, link_models, machine, named_path, uptime, write_json

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = ROOT.parent / "shared" / "data" / "helpsteer2"


def shortest(items: int, folder: Path) -> Path:
    """A benchmark folder with the ``items`` shortest eval items whose labels differ."""
    rows = json.loads((BENCHMARK / "eval.json").read_text())
    differ = [r for r in rows if r["labels"][0] != r["labels"][1]]
    differ.sort(key=lambda r: len(r["prompt"]) + sum(len(x) for x in r["responses"]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.json").write_text(json.dumps(differ[:items]))
    (folder / "train.json").write_text((BENCHMARK / "train.json").read_text())
    return folder


def run(src: Path, items: int, home: str, out: Path, bench: Path) -> dict:
    cmd = [sys.executable, "-m", "pluralign", "eval", "--method", "spm", "--benchmark", str(bench)]
    cmd += ["--target", "high", "--limit", str(items), "--no-cache", "--out", str(out)]
    started = time.perf_counter()
    res = subprocess.run(
        cmd,
        env={**os.environ, "PYTHONPATH": str(src), "PLURALIGN_HOME": home},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"the eval from {src} failed: {res.stderr[-2000:]}")
    from pluralign.evaluation.runs import RESULTS  # the run folder's format has one owner

    results = json.loads((out / RESULTS).read_text())
    return {
        "seconds": round(seconds, 1),
        "seconds_per_item": round(seconds / items, 1),
        "judge_seconds": results.get("llm_seconds"),
        "accuracy_high": results["targets"][0].get("accuracy"),
        "uptime": uptime(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=named_path, required=True, help="src/ folder of the old checkout")
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--out", type=named_path, default=None)
    args = ap.parse_args()
    print(header(), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as home:
        link_models(home)
        bench = shortest(args.items, Path(home) / "bench")
        for label, src in (("old", args.old), ("new", ROOT / "src")):
            results[label] = run(src, args.items, home, Path(home) / f"run-{label}", bench)
            print(f"{label}: {json.dumps(results[label])}", flush=True)
    old, new = results["old"]["seconds_per_item"], results["new"]["seconds_per_item"]
    print(f"eval spm, {args.items} items: old {old:.1f} s an item, new {new:.1f} s an item ({old / new:.2f}x)")
    if args.out:
        write_json(args.out, {"machine": machine(), "items": args.items, **results})


if __name__ == "__main__":
    main()
