"""How long `pluralign --help` takes to start, old tree against new, in one run.

  python bench/cli_startup.py --old /path/to/old/checkout/src [--rounds 15]

Each CLI call in the tests and in scripts pays this start-up (imports and the options the
CLI generates from the registries); the median of ``--rounds`` runs is printed for each tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import header, named_path, uptime

ROOT = Path(__file__).resolve().parent.parent


def median_seconds(src: Path, args: list[str], rounds: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pluralign", *args], env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=named_path, required=True, help="src/ folder of the old checkout")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    print(header(), flush=True)
    for command in (["--help"], ["eval", "--help"], ["methods"]):
        old = median_seconds(args.old, command, args.rounds)
        new = median_seconds(ROOT / "src", command, args.rounds)
        print(f"pluralign {' '.join(command):12} old {old:.3f} s  new {new:.3f} s  ({uptime()})", flush=True)


if __name__ == "__main__":
    main()
