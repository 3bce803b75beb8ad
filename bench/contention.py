"""llama.cpp threads under CPU contention.

llama.cpp's worker threads spin while they wait for each other; when other processes keep
the cores busy, a thread that is descheduled stalls all the others. This times the same
small decision (SmolLM2, spm-zeroshot, one attribute, one sample, no cache) with 1 and 2
threads and with pluralign's default (loaded in each condition, as a new `pluralign choose`
process would), first on idle cores, then with ``--hogs`` busy-looping processes.

    python bench/contention.py --out bench/results/contention.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

from common import named_path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def _spin(stop: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    x = 0
    while not stop.is_set():
        x = (x * 31 + 7) % 1_000_003


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--out", type=named_path, default=None)
    args = parser.parse_args()

    from common import header, machine, uptime, write_json

    from pluralign.api import Chooser
    from pluralign.settings import make_settings

    print(header(), flush=True)
    demo = {
        "question": "Is it fine to skip the queue when I am late?",
        "responses": ["No, wait your turn.", "Yes, go ahead."],
    }
    choosers = {
        n: Chooser("spm-zeroshot", make_settings({"model": args.model, "threads": n, "samples": 1, "cache": False}))
        for n in (1, 2)
    }
    results: dict[str, dict[str, float]] = {}

    def measure(condition: str) -> None:
        results[condition] = {}
        # the default is read when the judge loads, as a `pluralign choose` process does
        default = Chooser("spm-zeroshot", make_settings({"model": args.model, "samples": 1, "cache": False}))
        picked = default.method.backend.n_threads  # type: ignore[attr-defined]
        for n, chooser in [*choosers.items(), (f"default ({picked})", default)]:
            times = []
            for r in range(args.rounds):
                chooser.method.backend.reset()  # type: ignore[attr-defined]
                t0 = time.perf_counter()
                chooser.choose(demo["question"], demo["responses"], {"fairness": 1.0}, seed=r)
                times.append(time.perf_counter() - t0)
            label = n if isinstance(n, str) else f"{n} thread{'s' if n > 1 else ''}"
            results[condition][label] = round(statistics.median(times), 2)
        default.close()
        print(f"{condition}: {results[condition]} ({uptime()})", flush=True)

    measure("idle")
    stop = multiprocessing.Event()
    hogs = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(args.hogs)]
    for h in hogs:
        h.start()
    try:
        time.sleep(2)
        measure(f"{args.hogs} busy processes")
    finally:
        stop.set()
        for h in hogs:
            h.join()
    for chooser in choosers.values():
        chooser.close()
    if args.out:
        write_json(args.out, {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
