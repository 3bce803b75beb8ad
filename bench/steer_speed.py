"""One steered completion, old and new side by side in one run: two `pluralign serve` on
127.0.0.1 with the default offline judge and generator (the judge's model, in process), the
official `openai` client, the demo's target, judgement cache off, questions from the clear-cut
set. "old" judges a chat's candidates as the proxy did up to 652c47d (the method's own passes, one per order of
the candidates, each with a sentence of reasoning per candidate: `--steer-passes 0`); "new"
with the service's defaults (two orders). Both draw the same candidates (the same
seed), so the chosen ones can be compared.

  python bench/steer_speed.py [--questions 5] [--candidates 4] [--model smollm2-135m]
                              [--old "--steer-passes 0"] [--new "--steer-passes 1 --no-steer-reasoning"]
                              [--out bench/results/steer_speed.json]

Prints, per question and configuration, seconds of generation and of judging and the chosen
candidate; then the means, and how often new chose what old chose.
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
from typing import Any

from common import header, machine, named_path, positive_int, uptime, write_json
from serve_throughput import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {"old": ["--steer-passes", "0"], "new": []}


def _start(home: str, name: str, extra: list[str], args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "pluralign", "serve", "--port", str(port), "--no-cache",
           "--candidates", str(args.candidates), "--generator-max-tokens", str(args.max_tokens),
           "--db", str(Path(home) / f"{name}.sqlite"),
           *(["--model", args.model] if args.model else []), *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"pluralign serve ({name}) exited with {proc.returncode}")
        time.sleep(0.5)
    raise SystemExit(f"pluralign serve ({name}) did not start")


def _ask(url: str, question: str, target: dict[str, Any]) -> dict[str, Any]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=1800, max_retries=0)
    started = time.perf_counter()
    out = client.chat.completions.create(
        model="pluralign", messages=[{"role": "user", "content": question}], seed=0,
        extra_body={"pluralign": {"target": target}},
    )  # fmt: skip
    steer = out.model_extra["pluralign"]
    return {
        **steer["seconds"],
        "total": round(time.perf_counter() - started, 2),
        "chosen": out.choices[0].message.content,
        "candidates": [c["content"] for c in steer["candidates"]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=positive_int, default=5)
    ap.add_argument("--candidates", type=positive_int, default=4)
    ap.add_argument("--max-tokens", type=positive_int, default=120)
    ap.add_argument("--model", default=None, help="judge and generator (default: the default judge's model)")
    ap.add_argument("--old", default="--steer-passes 0", help="flags of the old configuration (default: 0.2's judging)")
    ap.add_argument("--new", default="", help="flags of the new configuration (default: the service's defaults)")
    ap.add_argument("--out", type=named_path, default=None)
    args = ap.parse_args()
    CONFIGS["old"], CONFIGS["new"] = args.old.split(), args.new.split()

    print(header(), flush=True)
    print(f"old: serve {' '.join(CONFIGS['old'])}; new: serve {' '.join(CONFIGS['new']) or '(defaults)'}", flush=True)
    probes = [json.loads(line) for line in (ROOT / "bench" / "data" / "clear_cut.jsonl").read_text().splitlines()]
    questions = list(dict.fromkeys(p["question"] for p in probes))[: args.questions]
    target = json.loads((ROOT / "examples" / "target_care.json").read_text())
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as home:
        servers = {name: _start(home, name, extra, args) for name, extra in CONFIGS.items()}
        try:
            for q in questions:
                row: dict[str, Any] = {"question": q}
                for name, (_, url) in servers.items():  # one at a time: they never compete for the cores
                    row[name] = _ask(url, q, target)
                    row[name]["uptime"] = uptime()
                row["same_candidates"] = row["old"]["candidates"] == row["new"]["candidates"]
                row["same_choice"] = row["old"]["chosen"] == row["new"]["chosen"]
                rows.append(row)
                show = {n: {k: row[n][k] for k in ("generation", "judging", "total")} for n in CONFIGS}
                print(json.dumps({"question": q[:50], **show, "same_choice": row["same_choice"]}), flush=True)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=60)
    summary: dict[str, Any] = {}
    for name in CONFIGS:
        means = {k: round(sum(r[name][k] for r in rows) / len(rows), 1) for k in ("generation", "judging", "total")}
        summary[name] = means
        print(f"{name}: generation {summary[name]['generation']} s, judging {summary[name]['judging']} s, "
              f"total {summary[name]['total']} s a completion (mean of {len(rows)})", flush=True)  # fmt: skip
    agree = sum(r["same_choice"] for r in rows)
    comparable = sum(r["same_candidates"] for r in rows)
    print(f"new chose what old chose in {agree}/{len(rows)} (the same candidates drawn in {comparable}/{len(rows)})")
    if args.out:
        write_json(args.out, {"machine": machine(), "model": args.model, "rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
