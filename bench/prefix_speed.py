"""A decision, then a second one on a different question with the same target (the way people
use pluralign), with the default offline judge and the judgement cache off: the old tree
against the new one, in one run.

  python bench/prefix_speed.py --old /path/to/v0.2/src [--model M] [--out bench/results/prefix_speed.json]

Each tree runs in a process of its own (the old one from ``--old``), the new one twice: a
first process that fills the prefix store, then a second process that starts from it (a
second `pluralign choose`). Printed: seconds per decision (model load excluded, and the load
time beside it), peak RSS, the choices and predictions, with `uptime` after each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import header, link_models, machine, named_path, uptime, write_json

ROOT = Path(__file__).resolve().parent.parent
SECOND = {
    "question": "My colleague asks me, for the third time this month, to cover her shift. What should I say?",
    "responses": [
        "Tell her no: covering shifts is her problem, and your time is yours.",
        "Ask how she is doing, and offer to cover once while you help her find a longer-term fix.",
    ],
}

RUNNER = r"""
import json, resource, sys, time
from pluralign.api import Chooser
from pluralign.settings import make_settings
spec = json.loads(sys.argv[1])
t0 = time.perf_counter()
chooser = Chooser("spm", make_settings(spec["settings"]))
out = {"load_s": round(time.perf_counter() - t0, 2), "decisions": []}
for probe in spec["probes"]:
    t0 = time.perf_counter()
    r = chooser.choose(probe["question"], probe["responses"], spec["target"])
    out["decisions"].append({"seconds": round(time.perf_counter() - t0, 2), "chosen": r.selected_index,
                             "predictions": r.predictions, "llm_calls": r.llm_calls})
backend = getattr(chooser.method, "backend", None)
stats = getattr(backend, "prefixes", None)
out["prefix_stats"] = stats.stats.__dict__ if stats is not None else None
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
chooser.close()
print("RESULT " + json.dumps(out))
"""


def run(src: Path, settings: dict, probes: list[dict], target: dict, env: dict[str, str]) -> dict:
    spec = json.dumps({"settings": settings, "probes": probes, "target": target})
    res = subprocess.run(
        [sys.executable, "-c", RUNNER, spec],
        env={**os.environ, **env, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"the run failed: {res.stderr[-2000:]}")
    return json.loads(line.removeprefix("RESULT "))


def show(label: str, out: dict) -> None:
    times = ", ".join(f"{d['seconds']:.1f} s" for d in out["decisions"])
    chosen = [d["chosen"] for d in out["decisions"]]
    print(
        f"{label:44} load {out['load_s']:.1f} s; decisions {times}; chosen {chosen}; "
        f"peak RSS {out['peak_rss_mb']} MB; prefixes {out['prefix_stats']} ({uptime()})",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=named_path, required=True, help="src/ folder of the old checkout")
    ap.add_argument("--model", default=None)
    ap.add_argument("--new-options", default="{}", help='JSON options for the new tree, e.g. \'{"icl_rule": "fixed"}\'')
    ap.add_argument("--out", type=named_path, default=None)
    args = ap.parse_args()
    demo = json.loads((ROOT / "examples" / "neighbour.json").read_text())
    target = json.loads((ROOT / "examples" / "target_care.json").read_text())
    probes = [{"question": demo["question"], "responses": demo["responses"]}, SECOND]
    base = {"cache": False, **({"model": args.model} if args.model else {})}
    print(header(), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as home:
        env = {"PLURALIGN_HOME": home}
        link_models(home)
        results["old"] = run(args.old, base, probes, target, env)
        show("old: first and second decision, one process", results["old"])
        new = {**base, **json.loads(args.new_options)}
        results["new"] = run(ROOT / "src", new, probes, target, env)
        show("new: first and second decision, one process", results["new"])
        results["new_second_process"] = run(ROOT / "src", new, [SECOND], target, env)
        show("new: the second question in a new process", results["new_second_process"])
    old, fresh, warm = (results[k]["decisions"] for k in ("old", "new", "new_second_process"))
    print(
        f"second decision: old {old[1]['seconds']:.1f} s, new {fresh[1]['seconds']:.1f} s "
        f"({old[1]['seconds'] / fresh[1]['seconds']:.2f}x), new process with the store warm "
        f"{warm[0]['seconds']:.1f} s ({old[1]['seconds'] / warm[0]['seconds']:.2f}x); "
        f"cold first decision: old {old[0]['seconds']:.1f} s, new {fresh[0]['seconds']:.1f} s",
        flush=True,
    )
    if args.out:
        write_json(args.out, {"machine": machine(), "uptime": uptime(), "options": args.new_options, **results})


if __name__ == "__main__":
    main()
