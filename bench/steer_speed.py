"""One steered completion with the default offline judge and generator (the judge's model,
in process): seconds of generation and of judging, and how often the chosen candidate is not
the generator's first one (what steering changes).

  python bench/steer_speed.py [--questions 5] [--candidates 4] [--out bench/results/steer_speed.json]

A `pluralign serve` on 127.0.0.1, the official `openai` client, the demo's caring target,
judgement cache off; questions from the clear-cut set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import header, machine, uptime, write_json
from serve_throughput import free_port

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import httpx
    from openai import OpenAI

    print(header(), flush=True)
    probes = [json.loads(line) for line in (ROOT / "bench" / "data" / "clear_cut.jsonl").read_text().splitlines()]
    questions = list(dict.fromkeys(p["question"] for p in probes))[: args.questions]
    target = json.loads((ROOT / "examples" / "target_care.json").read_text())
    port = free_port()
    rows = []
    with tempfile.TemporaryDirectory() as home:
        cmd = [sys.executable, "-m", "pluralign", "serve", "--port", str(port), "--no-cache",
               "--candidates", str(args.candidates), "--generator-max-tokens", str(args.max_tokens),
               "--db", str(Path(home) / "users.sqlite")]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                import time

                time.sleep(0.5)
            client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=1800, max_retries=0)
            for q in questions:
                out = client.chat.completions.create(
                    model="local", messages=[{"role": "user", "content": q}], seed=0,
                    extra_body={"pluralign": {"target": target}},
                )  # fmt: skip
                steer = out.model_extra["pluralign"]
                row = {"question": q, **steer["seconds"], "chosen": steer["selected_index"],
                       "changed": steer["selected_index"] != 0, "uptime": uptime()}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    gen = sum(r["generation"] for r in rows) / len(rows)
    judge = sum(r["judging"] for r in rows) / len(rows)
    changed = sum(r["changed"] for r in rows)
    print(
        f"{len(rows)} steered completions, {args.candidates} candidates of at most {args.max_tokens} tokens: "
        f"generation {gen:.1f} s, judging {judge:.1f} s a completion; the chosen candidate was not the "
        f"generator's first in {changed}/{len(rows)}",
        flush=True,
    )
    if args.out:
        write_json(args.out, {"machine": machine(), "rows": rows, "generation_s": gen, "judging_s": judge})


if __name__ == "__main__":
    main()
