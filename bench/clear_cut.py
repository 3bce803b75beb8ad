"""Is the default judge right where any person would be? The clear-cut probe set
(bench/data/clear_cut.jsonl: 24 probes written for pluralign, MIC- and HelpSteer2-style
attributes, one target each) over several seeds; the demo (scripts/demo.sh: two people,
two targets) in both response orders over --demo-seeds seeds; and the old demo, kept as a
known failure of the small judge.

    python bench/clear_cut.py                       # the default configuration of `pluralign choose`
    python bench/clear_cut.py --samples 3 --seeds 3 --out bench/results/clear_cut_before.json
    python bench/clear_cut.py --icl-rule fixed --seeds 1 --demo-seeds 1 --cache /tmp/c.sqlite
    python bench/clear_cut.py --estimator logprobs --samples 1 --no-reasoning   # how the proxy judges

Prints the share of right choices per seed and overall, and how often the demo is right.
Answers go through a judgement cache of their own (bench/runs/clear_cut.sqlite), so an
interrupted run continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from common import header, machine, named_path, uptime, write_json  # noqa: E402

from pluralign.api import Chooser  # noqa: E402
from pluralign.settings import make_settings  # noqa: E402

DEMO_INPUT = ROOT / "examples" / "hiring.json"
DEMO_PEOPLE = {"alex": (ROOT / "examples" / "target_alex.json", 0), "sam": (ROOT / "examples" / "target_sam.json", 1)}
"""scripts/demo.sh: each person's target and the response any person would pick for them."""
KNOWN_FAILURE_INPUT = ROOT / "examples" / "neighbour.json"
KNOWN_FAILURE_TARGET = ROOT / "examples" / "target_care.json"
KNOWN_FAILURE_RIGHT = 1  # the offer to help; the small judge picks the brush-off (care and authority nearly tie)


def decide(chooser: Chooser, question: str, responses: list[str], target: dict, seed: int, right: int):
    """One timed decision and its record."""
    t0 = time.perf_counter()
    res = chooser.choose(question, responses, target, seed=seed)
    return res, {
        "seed": seed,
        "right": res.selected_index == right,
        "chosen": res.selected_index,
        "predictions": res.predictions,
        "confidence": res.confidence,
        "seconds": round(time.perf_counter() - t0, 2),
        "llm_calls": res.llm_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="spm")
    parser.add_argument("--model", default=None)
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--estimator", default=None)
    parser.add_argument("--prompts", type=named_path, default=None)
    parser.add_argument(
        "--icl-rule",
        default=None,
        help="levels (similarity, the paper's) or fixed (the same examples for every question)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--no-reasoning", dest="reasoning", action="store_false", help="scores only (what the steering proxy asks)"
    )
    parser.add_argument(
        "--reasoning-chars", type=int, default=None, help="the longest reasoning per response (the proxy's cap)"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--demo-seeds", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--cache", type=named_path, default=ROOT / "bench" / "runs" / "clear_cut.sqlite")
    parser.add_argument("--out", type=named_path, default=None)
    args = parser.parse_args()
    options = {
        k: v
        for k, v in dict(
            model=args.model,
            samples=args.samples,
            estimator=args.estimator,
            prompts=args.prompts,
            threads=args.threads,
            icl_rule=args.icl_rule,
            reasoning=None if args.reasoning else False,
            reasoning_chars=args.reasoning_chars,
        ).items()
        if v is not None
    }
    settings = make_settings({**options, "cache_path": args.cache})
    probes = [json.loads(line) for line in (ROOT / "bench" / "data" / "clear_cut.jsonl").read_text().splitlines()]
    probes = probes[: args.limit] if args.limit else probes
    print(header(), flush=True)
    print(f"configuration: method {args.method}, {json.dumps(options, default=str) or 'defaults'}", flush=True)
    chooser = Chooser(args.method, settings)
    records = []
    started = time.perf_counter()
    try:
        for seed in range(args.seeds):
            right = 0
            for p in probes:
                res, record = decide(chooser, p["question"], p["responses"], p["target"], seed, p["right"])
                ok = record["right"]
                right += ok
                records.append({"set": "clear_cut", "id": p["id"], **record})
                print(f"  seed {seed} {p['id']:18} {'right' if ok else 'WRONG'} {res.predictions}", flush=True)
            print(f"seed {seed}: {right}/{len(probes)} right", flush=True)
        demo = json.loads(DEMO_INPUT.read_text())
        demo_right = demo_total = 0
        for seed in range(args.demo_seeds):
            for flipped in (False, True):  # both response orders
                responses = demo["responses"][::-1] if flipped else demo["responses"]
                for person, (path, right) in DEMO_PEOPLE.items():
                    target = json.loads(path.read_text())
                    want = 1 - right if flipped else right
                    res, record = decide(chooser, demo["question"], responses, target, seed, want)
                    demo_right += record["right"]
                    demo_total += 1
                    records.append({"set": "demo", "person": person, "flipped": flipped, **record})
                    print(f"  demo {person} seed {seed} flipped {flipped}: {'right' if record['right'] else 'WRONG'} "
                          f"{res.predictions} conf {res.confidence}", flush=True)  # fmt: skip
        known = json.loads(KNOWN_FAILURE_INPUT.read_text())
        target = json.loads(KNOWN_FAILURE_TARGET.read_text())
        res, record = decide(chooser, known["question"], known["responses"], target, 0, KNOWN_FAILURE_RIGHT)
        records.append({"set": "known_failure", **record})
        print(
            f"  known failure (the old demo): {'right' if record['right'] else 'WRONG'} {res.predictions}", flush=True
        )
    finally:
        chooser.close()
    clear = [r for r in records if r["set"] == "clear_cut"]
    share = sum(r["right"] for r in clear) / max(1, len(clear))
    fresh = [r["seconds"] for r in records if r["llm_calls"]]
    summary = {
        "configuration": {"method": args.method, **{k: str(v) for k, v in options.items()}},
        "clear_cut_right": sum(r["right"] for r in clear),
        "clear_cut_total": len(clear),
        "clear_cut_share": round(share, 4),
        "demo_right": demo_right,
        "demo_total": demo_total,
        "known_failure_right": next(r["right"] for r in records if r["set"] == "known_failure"),
        "mean_seconds_per_fresh_decision": round(sum(fresh) / len(fresh), 2) if fresh else None,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
        "uptime_after": uptime(),
        "records": records,
    }
    print(
        f"clear-cut: {summary['clear_cut_right']}/{len(clear)} right ({100 * share:.1f}%); "
        f"demo right in {demo_right}/{demo_total} (people x seeds x orders); "
        f"{summary['mean_seconds_per_fresh_decision']} s per fresh decision",
        flush=True,
    )
    print(uptime(), flush=True)
    if args.out:
        write_json(args.out, summary)


if __name__ == "__main__":
    main()
