"""Prompt and generation tokens/s through each pluralign backend next to the raw library
doing the same work, so the overhead of pluralign's layer is visible (goal: under 5%).

  python bench/backend_speed.py [--model smollm2-135m] [--prompts 3]

For every prompt, each path runs once with max_tokens=1 (prompt time) and once in full;
the KV cache is cleared first so no path profits from another's prefix.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from pluralign import prompts
from pluralign.attributes import DEFAULT_REGISTRY
from pluralign.data import load_benchmark
from pluralign.judges.base import GenerationSettings, JudgeRequest
from pluralign.judges.models import fetch

MAX_TOKENS = 1200  # room for both reasonings the schema allows, so every answer completes


def requests(bench_dir: str, n: int) -> list[JudgeRequest]:
    bench = load_benchmark(bench_dir)
    attr = DEFAULT_REGISTRY["helpfulness"]
    items = sorted(bench.eval, key=lambda p: len(p.prompt) + sum(map(len, p.responses)))[40 : 40 + n]
    out = []
    for p in items:
        choices = prompts.lettered(p.responses)
        messages = prompts.conversation(
            prompts.comparative_system(attr), [], prompts.comparative_user(attr, p.prompt, choices)
        )
        out.append(
            JudgeRequest(
                messages=messages,
                json_schema=prompts.comparative_schema(list(choices)),
                settings=GenerationSettings(temperature=0.0, max_tokens=MAX_TOKENS, max_attempts=1),
            )
        )
    return out


def measure(run: Any, reqs: list[JudgeRequest]) -> dict[str, float]:
    """run(request, max_tokens) -> (prompt_tokens, completion_tokens); returns tokens/s."""
    p_tok = p_time = g_tok = g_time = 0.0
    for r in reqs:
        t0 = time.perf_counter()
        pt, _ = run(r, 1)
        t1 = time.perf_counter()
        _, ct = run(r, MAX_TOKENS)
        t2 = time.perf_counter()
        p_tok += pt
        p_time += t1 - t0
        g_tok += max(ct - 1, 0)
        g_time += max((t2 - t1) - (t1 - t0), 1e-9)
    return {"prompt_tps": p_tok / p_time, "gen_tps": g_tok / g_time}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchmark", default="../shared/data/helpsteer2")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="bench/results/backend_speed")
    args = ap.parse_args()
    reqs = requests(args.benchmark, args.prompts)
    path = fetch(args.model)
    rows: dict[str, list[dict[str, float]]] = {}

    # llama.cpp in process
    from llama_cpp.llama_grammar import LlamaGrammar

    from pluralign.judges.llamacpp import LlamaCppBackend, schema_to_grammar_text

    backend = LlamaCppBackend(str(path), n_ctx=4096)
    raw_llm = backend._llm  # the same loaded model for both paths
    grammars = {id(r): LlamaGrammar.from_string(schema_to_grammar_text(r.json_schema), verbose=False) for r in reqs}

    def raw_llama(r: JudgeRequest, max_tokens: int) -> tuple[int, int]:
        raw_llm.reset()
        out: Any = raw_llm.create_chat_completion(
            messages=[m.model_dump() for m in r.messages],  # type: ignore[misc]
            grammar=grammars[id(r)],
            temperature=0.0,
            max_tokens=max_tokens,
            seed=0,
        )
        return out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]

    def via_backend(r: JudgeRequest, max_tokens: int) -> tuple[int, int]:
        raw_llm.reset()
        req = r.model_copy(update={"settings": r.settings.model_copy(update={"max_tokens": max_tokens})})
        try:
            res = backend.generate([req])[0]
            return res.usage.prompt_tokens, res.usage.completion_tokens
        except Exception:  # max_tokens=1 is never valid JSON: count what was spent
            return raw_llm.n_tokens, 1

    for _ in range(args.rounds):  # alternate to spread drift evenly
        rows.setdefault("llama.cpp raw", []).append(measure(raw_llama, reqs))
        rows.setdefault("pluralign llamacpp", []).append(measure(via_backend, reqs))
    backend.close()

    # OpenAI-compatible server (llama-cpp-python's), raw HTTP vs the backend
    port = 8791
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--host",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            httpx.get(f"{url}/models", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.5)
    from pluralign.judges.openai import OpenAIBackend

    client = httpx.Client(timeout=600)
    oa = OpenAIBackend("m", base_urls=[url], response_format="json_object", timeout=600)

    counter = iter(range(10**9))

    def fresh(r: JudgeRequest) -> JudgeRequest:
        """A unique first line, so the server's prefix cache cannot serve any call."""
        first = r.messages[0].model_copy(update={"content": f"[call {next(counter)}]\n{r.messages[0].content}"})
        return r.model_copy(update={"messages": [first, *r.messages[1:]]})

    def raw_http(r: JudgeRequest, max_tokens: int) -> tuple[int, int]:
        r = fresh(r)
        body = {
            "messages": [m.model_dump() for m in r.messages],
            "temperature": 0.0,
            "max_tokens": max_tokens,
            "seed": 0,
            "response_format": {"type": "json_object", "schema": r.json_schema},
        }
        usage = client.post(f"{url}/chat/completions", json=body).json()["usage"]
        return usage["prompt_tokens"], usage["completion_tokens"]

    def via_openai(r: JudgeRequest, max_tokens: int) -> tuple[int, int]:
        r = fresh(r)
        req = r.model_copy(update={"settings": r.settings.model_copy(update={"max_tokens": max_tokens})})
        try:
            res = oa.generate([req])[0]
            return res.usage.prompt_tokens, res.usage.completion_tokens
        except Exception:
            return raw_http(r, 1)[0], 1

    try:
        for _ in range(args.rounds):
            # vary the system prompt per path so the server's prefix cache cannot help either path
            rows.setdefault("server raw HTTP", []).append(measure(raw_http, reqs))
            rows.setdefault("pluralign openai", []).append(measure(via_openai, reqs))
    finally:
        server.terminate()
        server.wait()

    # transformers (SmolLM2 dequantised from its GGUF), next to llama.cpp's raw speed
    from pluralign.judges.transformers import TransformersBackend

    tf = TransformersBackend(args.model, batch_size=1)

    def via_transformers(r: JudgeRequest, max_tokens: int) -> tuple[int, int]:
        req = r.model_copy(update={"settings": r.settings.model_copy(update={"max_tokens": max_tokens})})
        try:
            res = tf.generate([req])[0]
            return res.usage.prompt_tokens, res.usage.completion_tokens
        except Exception:
            return len(tf._tok(tf.render(r.messages))["input_ids"]), 1

    rows.setdefault("pluralign transformers (xgrammar)", []).append(measure(via_transformers, reqs))
    tf.close()

    def avg(name: str, key: str) -> float:
        return statistics.mean(r[key] for r in rows[name])

    lines = [
        f"model {args.model}, {len(reqs)} HelpSteer2 comparative prompts, {args.rounds} rounds, "
        f"temperature 0, max {MAX_TOKENS} tokens; 2 CPU cores",
        "",
        "| path | prompt tok/s | generation tok/s | overhead vs raw (prompt / generation) |",
        "|---|---|---|---|",
    ]
    for raw, ours in (("llama.cpp raw", "pluralign llamacpp"), ("server raw HTTP", "pluralign openai")):
        for name in (raw, ours):
            ov = ""
            if name == ours:
                ov = (
                    f"{100 * (avg(raw, 'prompt_tps') / avg(ours, 'prompt_tps') - 1):+.1f}% / "
                    f"{100 * (avg(raw, 'gen_tps') / avg(ours, 'gen_tps') - 1):+.1f}%"
                )
            lines.append(f"| {name} | {avg(name, 'prompt_tps'):.1f} | {avg(name, 'gen_tps'):.1f} | {ov} |")
    name = "pluralign transformers (xgrammar)"
    lines.append(
        f"| {name} | {avg(name, 'prompt_tps'):.1f} | {avg(name, 'gen_tps'):.1f} | (another engine; compare "
        "with llama.cpp raw) |"
    )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".md").write_text(text)
    Path(args.out + ".json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
