"""How close does `pluralign eval` come to keeping an OpenAI-compatible judge server busy?

For each concurrency, --repeats pairs of runs of the same evaluation (spm-zeroshot, HelpSteer2's
first --items eval items, target high, --samples passes per attribute, scores only), each run on a
freshly started server (the instant one excepted), the pair's order alternating from pair to pair
(on a shared 2-core machine two runs of the same work differ by up to 10%: one pair proves little):

* pluralign: `evaluate()` with `--backend openai --concurrency C` and the default items at once
  (C: requests stay in flight across items), judgement cache off;
* raw: the official `openai` async client sending exactly the bodies pluralign's first attempts
  send (built by the same method), C at a time: the load generator to match.

Requests per second and completion tokens per second of each (medians over the pairs), and
pluralign's share of raw: the median of the pairs' shares, each pair's beside it.
Servers: llama-cpp-python's `llama_cpp.server` with SmolLM2 (it answers one request at a time);
llama.cpp's own `llama-server` with SmolLM2 and `--slots` parallel slots, when you built one
(`--llama-server PATH`; the llama.cpp that llama-cpp-python vendors builds it with
`cmake -B build -DLLAMA_BUILD_SERVER=ON && cmake --build build --target llama-server`); and an
instant scripted upstream that answers every request at once with a valid judgement, which
shows pluralign's own ceiling on this machine's cores.

    python bench/eval_throughput.py [--items 2] [--instant-items 150] [--levels 1,4,16,64] [--repeats 3]
        [--servers instant,llama_cpp.server,llama-server --llama-server PATH --slots 16]
        [--out bench/results/eval_throughput]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import header, machine, named_path, output, positive_int, uptime, write_json, write_text

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

INSTANT = r"""
import json, sys
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
import uvicorn

def value(schema):
    if "enum" in schema:
        return schema["enum"][len(schema["enum"]) // 2]
    if schema.get("type") == "object":
        return {k: value(v) for k, v in schema["properties"].items()}
    return "fine"

async def chat(request):
    body = await request.json()
    fmt = body.get("response_format") or {}
    schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
    text = json.dumps(value(schema))
    usage = {"prompt_tokens": len(json.dumps(body["messages"])) // 4, "completion_tokens": len(text) // 4}
    return JSONResponse({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}], "usage": usage})

async def models(request):
    return JSONResponse({"object": "list", "data": [{"id": "instant", "object": "model"}]})

app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]), Route("/v1/models", models)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(proc: subprocess.Popen, url: str, seconds: float) -> None:
    import httpx

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not come up in {seconds:g} s")


def start(kind: str, folder: Path, llama_server: Path | None, slots: int) -> tuple[subprocess.Popen, str, str]:
    """A server on a free port: its process, base URL and model name."""
    from pluralign.prediction.weights import resolve_gguf

    port = free_port()
    if kind == "instant":
        script = folder / "instant.py"
        script.write_text(INSTANT)
        cmd, model = [sys.executable, str(script), str(port)], "instant"
    elif kind == "llama-server":
        if llama_server is None:
            raise SystemExit("--servers llama-server needs --llama-server PATH (a llama.cpp llama-server binary)")
        gguf = resolve_gguf("smollm2-135m")
        cmd = [str(llama_server), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-np", str(slots),
               "-c", str(4096 * slots), "-t", "2", "--alias", "smollm2"]  # fmt: skip
        model = "smollm2"
    else:
        gguf = resolve_gguf("smollm2-135m")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", "4096", "--model_alias", "smollm2"]  # fmt: skip
        model = "smollm2"
    log = open(folder / f"{kind}.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    wait_up(proc, url, 180)
    return proc, url, model


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def method_for(url: str, model: str, concurrency: int, samples: int) -> Any:
    from pluralign.settings import build_method, make_settings

    settings = make_settings(
        {
            "backend": "openai",
            "base_urls": [url],
            "model": model,
            "concurrency": concurrency,
            "cache": False,
            "estimator": "sample",
            "samples": samples,
            "reasoning": False,
            "max_retries": 0,
            "timeout": 600,  # as the raw client's: a serial server's queue is long at 64
        }
    )
    return build_method("spm-zeroshot", settings)


def pluralign_run(bench: Any, url: str, model: str, c: int, samples: int, folder: Path) -> dict[str, Any]:
    from pluralign.choice.target_data import resolve_target_specs
    from pluralign.evaluation.evaluate import evaluate

    method = method_for(url, model, c, samples)
    targets = resolve_target_specs(["high"], bench.attributes)
    started = time.perf_counter()
    summary = evaluate(bench, method, targets, folder / f"run-{c}", overwrite=True)
    seconds = time.perf_counter() - started
    stats = summary.stats
    return {"seconds": round(seconds, 2), "requests": stats.calls, "completion_tokens": stats.completion_tokens,
            "failed_items": summary.n_failed, "mode": getattr(method.backend, "response_format", None)}  # fmt: skip


def bodies(bench: Any, url: str, model: str, samples: int, mode: str) -> list[dict[str, Any]]:
    """The first attempt of every request the evaluation sends, as pluralign sends it."""
    from pluralign.choice.attributes import DEFAULT_REGISTRY
    from pluralign.evaluation.plan import item_seed
    from pluralign.prediction.judges.openai import chat_body

    method = method_for(url, model, 1, samples)
    out = []
    for index, probe in enumerate(bench.eval):
        for attribute in DEFAULT_REGISTRY.require(bench.attributes):
            requests, _ = method.requests_for(probe, attribute, item_seed(0, index))
            out += [chat_body(model, r, r.settings.seed, mode) for r in requests]  # the first attempt's seed
    return out


async def raw_run(url: str, payloads: list[dict[str, Any]], c: int) -> dict[str, Any]:
    import httpx
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
    sem = asyncio.Semaphore(c)
    tokens = 0

    async def one(body: dict[str, Any]) -> None:
        nonlocal tokens
        async with sem:
            response = await client.post("/chat/completions", body=body, cast_to=httpx.Response)
            tokens += int(response.json()["usage"]["completion_tokens"])

    started = time.perf_counter()
    await asyncio.gather(*(one(b) for b in payloads))
    seconds = time.perf_counter() - started
    await client.close()
    return {"seconds": round(seconds, 2), "requests": len(payloads), "completion_tokens": tokens}


def rates(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "rps": round(row["requests"] / row["seconds"], 2),
            "tps": round(row["completion_tokens"] / row["seconds"], 1)}  # fmt: skip


def pair(kind: str, folder: Path, args: argparse.Namespace, bench: Any, c: int, raw_first: bool) -> dict[str, Any]:
    """One pluralign run and one raw run at concurrency ``c``, each on a server of its own started
    fresh (a server that kept the other's prompts would favour the second), in the given order."""
    server = start(kind, folder, args.llama_server, args.slots)
    _, url, model = server
    mode = "json_object" if kind == "llama_cpp.server" else "json_schema"
    payloads = bodies(bench, url, model, args.samples, mode)
    runs: dict[str, dict[str, Any]] = {}
    try:
        for side in ("raw", "pluralign") if raw_first else ("pluralign", "raw"):
            if runs or kind != "instant":  # the instant server keeps nothing: one serves both
                stop(server[0])
                server = start(kind, folder, args.llama_server, args.slots)
                _, url, model = server
            if side == "raw":
                runs[side] = rates(asyncio.run(raw_run(url, payloads, c)))
            else:
                runs[side] = rates(pluralign_run(bench, url, model, c, args.samples, folder))
    finally:
        stop(server[0])
    share = round(100 * runs["pluralign"]["rps"] / runs["raw"]["rps"], 1)
    order = "raw first" if raw_first else "pluralign first"
    return {**runs, "order": order, "share_percent": share, "uptime": uptime()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", type=named_path, default=SHARED / "helpsteer2")
    ap.add_argument("--items", type=positive_int, default=2, help="eval items against a real server")
    ap.add_argument("--instant-items", type=positive_int, default=150, help="eval items against the instant one")
    ap.add_argument("--samples", type=positive_int, default=2)
    ap.add_argument("--levels", default="1,4,16,64")
    ap.add_argument("--repeats", type=positive_int, default=3, help="pairs of runs at each level, orders alternating")
    ap.add_argument("--servers", default="instant,llama_cpp.server")
    ap.add_argument("--llama-server", type=named_path, default=None, help="llama.cpp's llama-server binary")
    ap.add_argument("--slots", type=positive_int, default=16, help="llama-server's parallel slots")
    ap.add_argument("--out", type=named_path, default=ROOT / "bench" / "results" / "eval_throughput")
    args = ap.parse_args()
    from pluralign.evaluation.data.benchmark import load_benchmark

    levels = [int(x) for x in args.levels.split(",")]
    print(header(), flush=True)
    rows: list[dict[str, Any]] = []
    heads = ["server", "concurrency", "pluralign req/s", "raw req/s", "pluralign tok/s", "raw tok/s",
             "share (median of pairs)", "pairs' shares", "uptime"]  # fmt: skip
    lines = ["| " + " | ".join(heads) + " |", "|---" * len(heads) + "|"]
    full = load_benchmark(args.benchmark)
    with tempfile.TemporaryDirectory() as home:
        folder = Path(home)
        for kind in args.servers.split(","):
            n = args.instant_items if kind == "instant" else args.items
            bench = full.subset(full.eval[:n])
            for c in levels:
                pairs = [pair(kind, folder, args, bench, c, raw_first=r % 2 == 1) for r in range(args.repeats)]
                for one in pairs:
                    print(json.dumps({"server": kind, "concurrency": c, **one}), flush=True)
                shares = [p["share_percent"] for p in pairs]
                row = {"server": kind, "items": n, "concurrency": c, "pairs": pairs,
                       "share_percent": statistics.median(shares), "uptime": uptime()}  # fmt: skip
                rows.append(row)

                def med(side: str, what: str, pairs: list[dict[str, Any]] = pairs) -> float:
                    return round(statistics.median(p[side][what] for p in pairs), 2)

                label = f"{kind}, {args.slots} slots" if kind == "llama-server" else kind
                lines.append(f"| {label} ({n} items) | {c} | {med('pluralign', 'rps')} | {med('raw', 'rps')} | "
                             f"{med('pluralign', 'tps')} | {med('raw', 'tps')} | {row['share_percent']}% | "
                             f"{', '.join(f'{x}%' for x in shares)} | {row['uptime']} |")  # fmt: skip
                print(lines[-1], flush=True)
    text = "\n".join([header(), "", *lines, ""])
    print(text, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(output(args.out, ".md"), text)
    write_json(output(args.out, ".json"), {"machine": machine(), "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
