"""Prompt and generation tokens/s through each pluralign backend next to the raw library
doing the same work, so the overhead of pluralign's layer is visible (goal: under 5%).

  python bench/backend_speed.py [--model smollm2-135m] [--prompts 4] [--rounds 3]

Each path sees every prompt twice in a row. The first call is cold (KV cache cleared, or a
unique first line for the server) with max_tokens=1: its time is the prompt time. The second
call repeats the same prompt in full; llama.cpp finds the prompt already in its KV cache, so
that call's time is the generation time. The raw path and pluralign's path take turns prompt
by prompt (order swapped every round) so that machine drift hits both alike; each figure is
the median over rounds of total tokens / total seconds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from common import raw_library, write_json, write_text

from pluralign.choice.attributes import DEFAULT_REGISTRY
from pluralign.evaluation.data import load_benchmark
from pluralign.prediction import prompts
from pluralign.prediction.judges.base import GenerationSettings, JudgeRequest
from pluralign.prediction.weights import fetch
from pluralign.support.errors import PluralignError

MAX_TOKENS = 1200  # room for both reasonings the schema allows, so every answer completes

# run(request, max_tokens, cold) -> (prompt_tokens, completion_tokens), or None when the
# path could not report them (pluralign raises on a 1-token answer, which is not JSON)
Run = Callable[[JudgeRequest, int, bool], tuple[int, int] | None]


def requests(bench_dir: str, n: int) -> list[JudgeRequest]:
    bench = load_benchmark(bench_dir)
    attr = DEFAULT_REGISTRY["helpfulness"]
    items = sorted(bench.eval, key=lambda p: len(p.question) + sum(map(len, p.responses)))[40 : 40 + n]
    out = []
    for p in items:
        choices = prompts.lettered(p.responses)
        messages = prompts.conversation(
            prompts.comparative_system(attr), [], prompts.comparative_user(attr, p.question, choices)
        )
        out.append(
            JudgeRequest(
                messages=messages,
                json_schema=prompts.comparative_schema(list(choices)),
                settings=GenerationSettings(temperature=0.0, max_tokens=MAX_TOKENS, max_attempts=1),
            )
        )
    return out


def with_max_tokens(r: JudgeRequest, max_tokens: int) -> JudgeRequest:
    return r.model_copy(update={"settings": r.settings.model_copy(update={"max_tokens": max_tokens})})


def compare(
    paths: dict[str, Run], reqs: list[JudgeRequest], rounds: int, warm_prefix: bool = True
) -> dict[str, list[dict[str, float]]]:
    """Per path and round: prompt and generation tokens/s, from the token counts of each
    path's full call (the same prompt and, at temperature 0, the same answer on every path)."""
    names = list(paths)
    rows: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for rnd in range(rounds):
        acc = {n: {"pt": 0.0, "ps": 0.0, "gt": 0.0, "gs": 0.0} for n in names}
        for r in reqs:
            for name in names if rnd % 2 == 0 else list(reversed(names)):
                run = paths[name]
                t0 = time.perf_counter()
                run(r, 1, True)
                t1 = time.perf_counter()
                full = run(r, MAX_TOKENS, False)
                t2 = time.perf_counter()
                if full is None:
                    raise SystemExit(f"{name} gave no answer for a full-length call")
                acc[name]["pt"] += full[0]
                acc[name]["ps"] += t1 - t0
                acc[name]["gt"] += full[1]
                acc[name]["gs"] += (t2 - t1) if warm_prefix else max(t2 - t1 - (t1 - t0), 1e-9)
        for name in names:
            a = acc[name]
            rows[name].append(
                {
                    "prompt_tps": a["pt"] / a["ps"],
                    "gen_tps": a["gt"] / a["gs"],
                    "prompt_tokens": a["pt"],
                    "gen_tokens": a["gt"],
                }
            )
        print(
            f"round {rnd + 1}/{rounds}: "
            + "; ".join(f"{n} {rows[n][-1]['prompt_tps']:.0f} / {rows[n][-1]['gen_tps']:.1f} tok/s" for n in names),
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default="../shared/data/helpsteer2")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    ap.add_argument("--out", default="bench/results/backend_speed")
    args = ap.parse_args()
    logging.getLogger("pluralign").setLevel(logging.ERROR)  # the 1-token calls fail to parse by design
    reqs = requests(args.benchmark, args.prompts)
    path = fetch(args.model)
    rows: dict[str, list[dict[str, float]]] = {}

    # llama.cpp in process: the raw library and pluralign's backend share one loaded model
    from llama_cpp.llama_grammar import LlamaGrammar

    from pluralign.prediction.judges.llamacpp import LlamaCppBackend, LlamaCppOptions, schema_to_grammar_text

    backend = LlamaCppBackend(str(path), LlamaCppOptions(n_ctx=4096, threads=args.threads))
    llm = raw_library(backend, n_ctx=4096)
    grammars = {id(r): LlamaGrammar.from_string(schema_to_grammar_text(r.json_schema), verbose=False) for r in reqs}

    def raw_llama(r: JudgeRequest, max_tokens: int, cold: bool) -> tuple[int, int]:
        if cold:
            llm.reset()
        out: Any = llm.create_chat_completion(
            messages=[m.model_dump() for m in r.messages],  # type: ignore[misc]
            grammar=grammars[id(r)],
            temperature=0.0,
            max_tokens=max_tokens,
            seed=0,
        )
        return out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]

    def via_backend(r: JudgeRequest, max_tokens: int, cold: bool) -> tuple[int, int] | None:
        if cold:
            backend.reset()
        try:
            res = backend.generate([with_max_tokens(r, max_tokens)])[0]
        except PluralignError:  # a 1-token answer is never valid JSON
            return None
        return res.usage.prompt_tokens, res.usage.completion_tokens

    rows |= compare({"llama.cpp raw": raw_llama, "pluralign llamacpp": via_backend}, reqs, args.rounds)
    backend.close()

    # OpenAI-compatible server (llama-cpp-python's): raw HTTP vs the backend
    port = 8791
    server_cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--port", str(port)]
    server_cmd += ["--n_ctx", "4096", "--host", "127.0.0.1"]
    if args.threads:
        server_cmd += ["--n_threads", str(args.threads)]
    server = subprocess.Popen(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            httpx.get(f"{url}/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.5)
    from pluralign.prediction.judges.openai import OpenAIBackend, OpenAIOptions

    client = httpx.Client(timeout=600)
    oa = OpenAIBackend("m", OpenAIOptions(base_urls=[url], response_format="json_object", timeout=600))
    counter = iter(range(10**9))
    current: dict[int, JudgeRequest] = {}

    def fresh(r: JudgeRequest, cold: bool) -> JudgeRequest:
        """A unique first line on each cold call, so the server's cache cannot serve it; the
        warm call that follows reuses it, so its prompt is already in the KV cache."""
        if cold or id(r) not in current:
            first = r.messages[0].model_copy(update={"content": f"[call {next(counter)}]\n{r.messages[0].content}"})
            current[id(r)] = r.model_copy(update={"messages": [first, *r.messages[1:]]})
        return current[id(r)]

    def raw_http(r: JudgeRequest, max_tokens: int, cold: bool) -> tuple[int, int]:
        r = fresh(r, cold)
        body = {
            "messages": [m.model_dump() for m in r.messages],
            "temperature": 0.0,
            "max_tokens": max_tokens,
            "seed": 0,
            "response_format": {"type": "json_object", "schema": r.json_schema},
        }
        usage = client.post(f"{url}/chat/completions", json=body).json()["usage"]
        return usage["prompt_tokens"], usage["completion_tokens"]

    def via_openai(r: JudgeRequest, max_tokens: int, cold: bool) -> tuple[int, int] | None:
        try:
            res = oa.generate([with_max_tokens(fresh(r, cold), max_tokens)])[0]
        except PluralignError:
            return None
        return res.usage.prompt_tokens, res.usage.completion_tokens

    try:
        rows |= compare({"server raw HTTP": raw_http, "pluralign openai": via_openai}, reqs, args.rounds)
    finally:
        server.terminate()
        server.wait()

    # transformers (SmolLM2 dequantised from its GGUF): another engine, no prefix reuse across
    # calls, so its generation time is the full call minus the prompt-only call
    from pluralign.prediction.judges.transformers import TransformersBackend, TransformersOptions

    tf = TransformersBackend(args.model, TransformersOptions(batch_size=1))

    def via_transformers(r: JudgeRequest, max_tokens: int, cold: bool) -> tuple[int, int] | None:
        try:
            res = tf.generate([with_max_tokens(r, max_tokens)])[0]
        except PluralignError:
            return None
        return res.usage.prompt_tokens, res.usage.completion_tokens

    rows |= compare({"pluralign transformers (xgrammar)": via_transformers}, reqs, args.rounds, warm_prefix=False)
    tf.close()
    report(args, reqs, rows)


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report(args: argparse.Namespace, reqs: list[JudgeRequest], rows: dict[str, list[dict[str, float]]]) -> None:
    first = rows["llama.cpp raw"][0]
    lines = [
        f"model {args.model}, {len(reqs)} HelpSteer2 comparative prompts ({first['prompt_tokens']:.0f} prompt and "
        f"{first['gen_tokens']:.0f} generated tokens per round), {args.rounds} rounds, temperature 0, "
        f"threads {args.threads or 'all'}; median over rounds",
        "",
        "| path | prompt tok/s | generation tok/s | pluralign overhead (prompt / generation) |",
        "|---|---|---|---|",
    ]
    for raw, ours in (("llama.cpp raw", "pluralign llamacpp"), ("server raw HTTP", "pluralign openai")):
        for name in (raw, ours):
            overhead = ""
            if name == ours:
                overhead = (
                    f"{100 * (median(rows[raw], 'prompt_tps') / median(rows[ours], 'prompt_tps') - 1):+.1f}% / "
                    f"{100 * (median(rows[raw], 'gen_tps') / median(rows[ours], 'gen_tps') - 1):+.1f}%"
                )
            tps = f"{median(rows[name], 'prompt_tps'):.1f} | {median(rows[name], 'gen_tps'):.1f}"
            lines.append(f"| {name} | {tps} | {overhead} |")
    name = "pluralign transformers (xgrammar)"
    lines.append(
        f"| {name} | {median(rows[name], 'prompt_tps'):.1f} | {median(rows[name], 'gen_tps'):.1f} | another engine: "
        "compare with llama.cpp raw |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(args.out + ".md"), text)
    write_json(Path(args.out + ".json"), rows)


if __name__ == "__main__":
    main()
