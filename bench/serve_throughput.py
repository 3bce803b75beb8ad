"""Decisions per minute of `pluralign serve` with the default offline judge: 20 requests with
the demo's target and varying questions, one after another, the old tree against the new one
in one run (judgement cache off, so every decision is judged).

  python bench/serve_throughput.py --old /path/to/v0.2/src [--requests 20] [--out bench/results/serve_throughput.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import header, link_models, machine, named_path, uptime, write_json

ROOT = Path(__file__).resolve().parent.parent
WHO = ["neighbour", "colleague", "brother", "friend", "landlord"]
ASKS = [
    "to look after her dog this weekend",
    "for a lift to the airport at 5 am",
    "to lend him 200 euros",
    "to help move house on Sunday",
]
RESPONSES = [
    "Say you are busy: it is their problem to solve, and your time is your own.",
    "Ask what is going on, and offer the help you can give, even if it is not all they asked for.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(src: Path, home: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pluralign", "serve", "--port", str(port), "--no-cache"],
        env={**os.environ, "PYTHONPATH": str(src), "PLURALIGN_HOME": home},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).json().get("status") == "ok":
                return proc, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"the server from {src} did not come up")


def measure(src: Path, questions: list[str], target: dict, home: str) -> dict:
    proc, url = serve(src, home)
    try:
        seconds = []
        chosen = []
        for q in questions:
            t0 = time.perf_counter()
            res = httpx.post(
                f"{url}/v1/choose", json={"question": q, "responses": RESPONSES, "target": target}, timeout=900
            )
            res.raise_for_status()
            seconds.append(round(time.perf_counter() - t0, 2))
            chosen.append(res.json()["selected_index"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {"seconds": seconds, "chosen": chosen, "per_minute": round(60 * len(seconds) / sum(seconds), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", type=named_path, required=True, help="src/ folder of the old checkout")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--out", type=named_path, default=None)
    args = ap.parse_args()
    target = json.loads((ROOT / "examples" / "target_care.json").read_text())
    questions = [f"My {w} asks me {a}. What should I say?" for a in ASKS for w in WHO][: args.requests]
    print(header(), flush=True)
    results = {}
    for label, src in (("old", args.old), ("new", ROOT / "src")):
        with tempfile.TemporaryDirectory() as home:  # an empty prefix store: the service starts cold
            link_models(home)
            results[label] = measure(src, questions, target, home)
        r = results[label]
        print(
            f"{label}: {len(r['seconds'])} decisions, {r['per_minute']} a minute; first {r['seconds'][0]} s, "
            f"median {sorted(r['seconds'])[len(r['seconds']) // 2]} s ({uptime()})",
            flush=True,
        )
    print(f"decisions a minute: old {results['old']['per_minute']}, new {results['new']['per_minute']}", flush=True)
    if args.out:
        write_json(args.out, {"machine": machine(), "uptime": uptime(), **results})


if __name__ == "__main__":
    main()
