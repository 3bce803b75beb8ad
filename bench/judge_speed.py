"""Speed of a judgement on this CPU.

1. For each model: prompt and generation tokens/s of a typical judge request (the demo's
   question, few-shot comparative regression on `care`, pluralign's prompts), and the wall
   time of one attribute judged with N = 1, 3, 5 samples as pluralign sends them (the
   prefix the samples share stays in llama.cpp's KV cache), and single-pass scoring.
2. The default `choose` of the demo (2 attributes) before and after this change, side by
   side in one run: the old prompts with 3 samples against the current default.

Prompt time comes from a cold 1-token call (KV cache cleared), generation time from the
full call that follows with the prompt already cached. Each figure is the median over
``--rounds``; `uptime` is printed beside each. Run it once per llama.cpp build to compare
builds (``--llama-path DIR`` puts another build of llama-cpp-python first on the path):

    python bench/judge_speed.py --models smollm2-135m,qwen2.5-coder-1.5b --out bench/results/judge_speed.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from common import named_path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-1.5b")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--llama-path", type=named_path, default=None, help="a folder holding another llama_cpp build")
    parser.add_argument("--label", default="")
    parser.add_argument("--skip-choose", action="store_true")
    parser.add_argument("--out", type=named_path, default=None)
    args = parser.parse_args()
    if args.llama_path is not None:
        sys.path.insert(0, str(args.llama_path))

    import llama_cpp
    from common import header, machine, raw_library, uptime, write_json
    from llama_cpp.llama_grammar import LlamaGrammar

    from pluralign.api import Chooser
    from pluralign.choice.attributes import DEFAULT_REGISTRY as R
    from pluralign.choice.probes import Probe
    from pluralign.prediction.judges.llamacpp import LlamaCppBackend, LlamaCppOptions, schema_to_grammar_text
    from pluralign.prediction.methods.spm import ComparativeRegression, SpmOptions
    from pluralign.settings import make_settings

    build = Path(llama_cpp.__file__).parent / "pluralign_build.json"
    variant = json.loads(build.read_text())["variant"] if build.exists() else "unknown"
    print(header(), flush=True)
    print(f"llama_cpp from {Path(llama_cpp.__file__).parent} ({variant}) {args.label}", flush=True)
    demo = json.loads((ROOT / "examples" / "neighbour.json").read_text())
    target = json.loads((ROOT / "examples" / "target_care.json").read_text())
    probe = Probe(prompt=demo["question"], responses=demo["responses"])
    out: dict = {"machine": machine(), "llama_build": variant, "label": args.label, "models": {}, "choose": {}}

    for model in args.models.split(","):
        backend = LlamaCppBackend(model, LlamaCppOptions(threads=args.threads))
        from pluralign.prediction.examples import ExampleSelector, builtin_bank

        selector = ExampleSelector(builtin_bank(), index="bm25")
        options = SpmOptions(samples=1)
        method = ComparativeRegression(backend, options, examples=selector, backend_estimator="logprobs")
        request = method.requests_for(probe, R["care"], 0)[0][0]
        llm = raw_library(backend)
        messages = [m.model_dump() for m in request.messages]
        grammar = LlamaGrammar.from_string(schema_to_grammar_text(request.json_schema), verbose=False)
        prompt_rates, gen_rates = [], []
        for _ in range(args.rounds):
            llm.reset()
            t0 = time.perf_counter()
            first = llm.create_chat_completion(messages=messages, grammar=grammar, max_tokens=1, temperature=0, seed=1)
            prompt_s = time.perf_counter() - t0
            n_prompt = first["usage"]["prompt_tokens"]
            t0 = time.perf_counter()
            full = llm.create_chat_completion(
                messages=messages, grammar=grammar, max_tokens=1024, temperature=0, seed=1
            )
            gen_s = time.perf_counter() - t0
            prompt_rates.append(n_prompt / prompt_s)
            gen_rates.append(full["usage"]["completion_tokens"] / gen_s)
        row = {
            "prompt_tokens": n_prompt,
            "completion_tokens": full["usage"]["completion_tokens"],
            "prompt_tok_s": round(statistics.median(prompt_rates), 1),
            "generation_tok_s": round(statistics.median(gen_rates), 1),
            "threads": backend.n_threads,
            "uptime": uptime(),
        }
        print(f"{model}: {json.dumps(row)}", flush=True)
        walls = {}
        for label, overrides in (
            ("1 sample", {"samples": 1}),
            ("3 samples", {"samples": 3}),
            ("5 samples", {"samples": 5}),
            ("single pass", {"estimator": "logprobs"}),
        ):
            times = []
            for r in range(args.rounds):
                backend.reset()
                m = method.with_options(SpmOptions(**overrides))
                t0 = time.perf_counter()
                m.assess(probe, [R["care"]], seed=100 + r)
                times.append(time.perf_counter() - t0)
            walls[label] = round(statistics.median(times), 2)
            print(f"  {model} {label}: {walls[label]} s per attribute ({uptime()})", flush=True)
        row["wall_seconds_one_attribute"] = walls
        out["models"][model] = row
        llm.close()
        backend.close()

    if not args.skip_choose:
        configs = {
            "before: old prompts, 3 samples": {"samples": 3, "prompts": ROOT / "bench" / "prompts_before"},
            "after: the default": {},
        }
        choosers = {
            name: Chooser("spm", make_settings({**cfg, "cache": False, "threads": args.threads}))
            for name, cfg in configs.items()
        }
        times: dict[str, list[float]] = {name: [] for name in configs}
        for r in range(args.rounds):
            for name, chooser in choosers.items():  # alternate, so load affects both alike
                chooser.method.backend.reset()  # type: ignore[attr-defined]
                t0 = time.perf_counter()
                chooser.choose(demo["question"], demo["responses"], target, seed=r)
                times[name].append(time.perf_counter() - t0)
                print(f"  choose, {name}, round {r}: {times[name][-1]:.1f} s ({uptime()})", flush=True)
        for name, chooser in choosers.items():
            out["choose"][name] = round(statistics.median(times[name]), 2)
            chooser.close()
        names = list(configs)
        speedup = out["choose"][names[0]] / out["choose"][names[1]]
        out["choose"]["speedup"] = round(speedup, 2)
        print(f"default choose: {json.dumps(out['choose'])}", flush=True)
    print(uptime(), flush=True)
    if args.out:
        write_json(args.out, out)


if __name__ == "__main__":
    main()
