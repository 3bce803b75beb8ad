"""Time and peak memory of choosing the next profile question for a large pool, this
version beside an older one (issue 17: a 126 KB /v1/profile/next took RSS from 434 MB to
over 1 GB). Each version runs in a child process of its own, so peak RSS is its own.

    python bench/profile_memory.py --old-rev 2b883c3 --pool 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, random, resource, sys, time
sys.path.insert(0, sys.argv[1]) if sys.argv[1] else None
import importlib; mod = importlib.import_module(sys.argv[2])
from pluralign.choice.attributes import DEFAULT_REGISTRY as R
names, n = json.loads(sys.argv[3]), int(sys.argv[4])
rng = random.Random(0)
pool = [mod.ChoiceRecord(id=f"p{i}", question="q" * 20, responses=["a" * 20, "b" * 20],
        predictions=[{a: rng.random() for a in names} for _ in range(2)]) for i in range(n)]
t = time.perf_counter()
mod.next_question(R.require(names), [], pool)
print(json.dumps({"seconds": round(time.perf_counter() - t, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""

SETS = {
    "helpsteer2 (5)": ["helpfulness", "correctness", "coherence", "complexity", "verbosity"],
    "mic (6)": ["care", "fairness", "liberty", "loyalty", "authority", "sanctity"],
}


def run(path: str, module: str, names: list[str], pool: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, path, module, json.dumps(names), str(pool)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old-rev", default="2b883c3", help="git revision of the older profile.py")
    parser.add_argument("--pool", type=int, default=1000)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    old = subprocess.run(
        ["git", "-C", str(root), "show", f"{args.old_rev}:src/pluralign/people/profile.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "old_profile.py").write_text(old)
        print(f"uptime: {os.popen('uptime').read().strip()}")
        cpu = [line for line in os.popen("lscpu").read().splitlines() if line.startswith("Model name")]
        print(f"cpu: {cpu[0].split(':', 1)[1].strip() if cpu else 'unknown'}")
        print(f"next question over a pool of {args.pool} two-response items, no answers yet")
        print("| attributes | version | seconds | peak RSS MB |\n|---|---|---|---|")
        for label, names in SETS.items():
            for version, path, module in ((args.old_rev, tmp, "old_profile"), ("this", "", "pluralign.people.profile")):
                r = run(path, module, names, args.pool)
                print(f"| {label} | {version} | {r['seconds']} | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
