"""Which library constrains transformers decoding: xgrammar or llguidance (outlines 0.2.1
needed ~120 s to build a JSON generator here, per ../shared/README.md).

  python bench/grammar_libs.py

Measures, with SmolLM2's tokenizer and pluralign's comparative schema (4 responses), the
time to compile the schema and the mean time to compute one next-token mask while walking a
valid answer token by token.
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np

from pluralign.prediction import prompts
from pluralign.prediction.weights import fetch
from pluralign.support.hf import quiet


def main() -> None:
    quiet()
    from transformers import AutoTokenizer

    path = fetch("smollm2-135m")
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    schema = prompts.comparative_schema(["A", "B", "C", "D"])
    answer = json.dumps(
        {k: {"reasoning": "It answers the question clearly.", "score": 70} for k in "ABCD"},
    )
    ids = tok(answer, add_special_tokens=False)["input_ids"]
    vocab = len(tok)
    rows = []

    import xgrammar as xgr

    t0 = time.perf_counter()
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=vocab)
    compiled = xgr.GrammarCompiler(info).compile_json_schema(json.dumps(schema), any_whitespace=False)
    compile_s = time.perf_counter() - t0
    matcher = xgr.GrammarMatcher(compiled)
    bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
    times = []
    for i in ids:
        t = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        times.append(time.perf_counter() - t)
        assert matcher.accept_token(i)
    rows.append(("xgrammar", compile_s, statistics.mean(times)))

    import llguidance
    import llguidance.hf
    import llguidance.torch

    t0 = time.perf_counter()
    lltok = llguidance.hf.from_tokenizer(tok)
    grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), defaults={"whitespace_flexible": False})
    m = llguidance.LLMatcher(lltok, grammar)
    compile_s = time.perf_counter() - t0
    mask = llguidance.torch.allocate_token_bitmask(1, lltok.vocab_size)
    times = []
    compact = json.dumps(json.loads(answer), separators=(",", ":"))  # its non-flexible whitespace
    for i in tok(compact, add_special_tokens=False)["input_ids"]:
        t = time.perf_counter()
        llguidance.torch.fill_next_token_bitmask(m, mask, 0)
        times.append(time.perf_counter() - t)
        if not m.consume_token(i):
            print(f"llguidance stopped: {m.get_error().splitlines()[0][:200]}")
            break
    rows.append(("llguidance", compile_s, statistics.mean(times)))

    print(f"SmolLM2 tokenizer ({vocab} tokens), comparative schema for 4 responses, {len(ids)} answer tokens\n")
    print("| library | compile s | mean mask ms/token |\n|---|---|---|")
    for name, c, m_s in rows:
        print(f"| {name} | {c:.3f} | {1000 * m_s:.3f} |")
    _ = np


if __name__ == "__main__":
    main()
