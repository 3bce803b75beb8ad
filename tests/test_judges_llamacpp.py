"""The llama.cpp backend with the real SmolLM2 GGUF."""

import json

import pytest

from pluralign.choice.attributes import DEFAULT_REGISTRY
from pluralign.prediction import prompts
from pluralign.prediction.judges.base import GenerationSettings, JudgeRequest, parse_answer
from pluralign.prediction.judges.llamacpp import LlamaCppBackend, LlamaCppOptions, schema_to_grammar_text
from pluralign.prediction.weights import resolve_gguf
from pluralign.support.errors import ContextLengthError, ModelNotFoundError

pytestmark = pytest.mark.slow  # real models


def _request(n: int, temperature: float = 0.7, seed: int = 0, samples: int = 1) -> JudgeRequest:
    attr = DEFAULT_REGISTRY["helpfulness"]
    choices = prompts.lettered([f"Answer number {i}: the result is {i + 3}." for i in range(n)])
    messages = prompts.conversation(
        prompts.DEFAULT_PROMPTS.comparative_system(attr),
        [],
        prompts.DEFAULT_PROMPTS.comparative_user(attr, "What is 2 + 2?", choices),
    )
    return JudgeRequest(
        messages=messages,
        json_schema=prompts.comparative_schema(list(choices)),
        settings=GenerationSettings(temperature=temperature, seed=seed, n=samples, max_tokens=1500),
    )


@pytest.mark.parametrize("n", [2, 4])
def test_schema_valid_comparative_json(llamacpp_backend, n: int):
    result = llamacpp_backend.generate([_request(n, samples=2)])[0]
    assert len(result.outputs) == 2
    for raw, out in zip(result.raw, result.outputs, strict=True):
        assert set(out) == set(prompts.letters_for(n))
        assert all(0 <= out[k]["score"] <= 100 and out[k]["reasoning"] for k in out)
        assert json.loads(raw) == out  # strict JSON: the grammar keeps control characters out
    assert result.usage.prompt_tokens > 50 and result.usage.completion_tokens > 10


def test_deterministic_at_temperature_zero(llamacpp_backend):
    a = llamacpp_backend.generate([_request(2, temperature=0.0, seed=7)])[0]
    llamacpp_backend.generate([_request(3, temperature=0.0, seed=1)])  # disturb the prefix cache
    b = llamacpp_backend.generate([_request(2, temperature=0.0, seed=7)])[0]
    assert a.raw == b.raw


def test_digit_logprobs_match_a_full_forward_pass(llamacpp_backend, smollm2_path):
    """The log-probabilities read during decoding (at the digits only) are the distribution a
    fresh model computes over the same tokens with logits for every position."""
    import numpy as np
    from llama_cpp import Llama

    request = _request(2, temperature=0.0, seed=3)
    request = request.model_copy(update={"settings": request.settings.model_copy(update={"top_logprobs": 5})})
    result = llamacpp_backend.generate([request])[0]
    assert result.attempts == 1 and result.tokens and result.logprobs
    pieces, logprobs = result.tokens[0], result.logprobs[0]
    assert "".join(pieces).strip() == result.raw[0].strip()
    n_prompt = result.usage.prompt_tokens
    ids = llamacpp_backend.last_ids
    assert len(ids) == n_prompt + len(pieces)
    digit_positions = [k for k, tok in enumerate(pieces) if any(c.isdigit() for c in tok)]
    assert len(digit_positions) >= 2  # at least both scores
    reference = Llama(model_path=str(smollm2_path), n_ctx=len(ids) + 64, logits_all=True, verbose=False)
    try:
        reference.eval(ids)
        for k in range(len(pieces)):
            if k not in digit_positions:
                assert logprobs[k] == {}
                continue
            row = reference.scores[n_prompt + k - 1]
            full = row - row.max() - np.log(np.exp(row - row.max()).sum())
            best = int(np.argmax(full))
            text = reference.detokenize([best]).decode("utf-8", errors="replace")
            assert len(logprobs[k]) >= 4
            # batched and single-token decodes use different quantised kernels (AVX2 differs more
            # than AVX-512, AMX measured 0.086 apart): close, not equal; the top token may swap at a near tie
            ours = max(logprobs[k], key=logprobs[k].__getitem__)
            top_ref = float(np.exp(full[best]))
            if ours != text:
                ours_id = reference.tokenize(ours.encode(), add_bos=False, special=True)
                assert len(ours_id) == 1 and top_ref - float(np.exp(full[ours_id[0]])) < 0.1
                continue
            assert abs(np.exp(logprobs[k][text]) - top_ref) < 0.05
    finally:
        reference.close()


def test_grammar_excludes_control_characters():
    text = schema_to_grammar_text(prompts.comparative_schema(["A", "B"]))
    char_rule = next(line for line in text.splitlines() if line.startswith("char ::="))
    assert "\\x00-\\x1F" in char_rule
    assert "score" in text and '"100"' in text


def test_parse_answer_rejects_raw_newlines_and_bad_scores():
    schema = prompts.comparative_schema(["A", "B"])
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_answer('{"A": {"reasoning": "a\nb", "score": 3}, "B": {"reasoning": "c", "score": 4}}', schema)
    with pytest.raises(ValueError, match="A/score"):
        parse_answer('{"A": {"reasoning": "a", "score": 255}, "B": {"reasoning": "c", "score": 4}}', schema)


def test_context_length_error_says_by_how_much(smollm2_path):
    backend = LlamaCppBackend(str(smollm2_path), LlamaCppOptions(n_ctx=256))
    try:
        with pytest.raises(ContextLengthError, match=r"too many"):
            backend.generate([_request(4)])
    finally:
        backend.close()


def test_model_resolution_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_gguf(str(tmp_path / "missing.gguf"))
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        resolve_gguf("no-such-model")


PROBES = [
    ("examples/neighbour.json", {"care": 0.9, "authority": 0.2}),
    ("A friend asks me to read her essay tonight. What should I say?", {"care": 1.0}),
    ("My manager wants the report by Friday. How should I reply?", {"authority": 1.0, "care": 0.3}),
]


def _probe(spec: str) -> tuple[str, list[str]]:
    import json

    from support import ROOT

    demo = json.loads((ROOT / "examples" / "neighbour.json").read_text())
    return (demo["question"], demo["responses"]) if spec.endswith(".json") else (spec, demo["responses"])


@pytest.mark.parametrize("rule", ["fixed", "levels"])
def test_a_restored_prefix_gives_the_decision_computed_from_scratch(smollm2_path, tmp_path, rule: str):
    """Same choice, predictions within 0.02, whether the state after the examples is read
    afresh, restored from memory, or restored from disk by a new backend (a new process)."""
    from pluralign.api import Chooser
    from pluralign.settings import make_settings

    def run(prefix_cache: bool) -> tuple[list, object]:
        settings = make_settings(
            {
                "model": str(smollm2_path),
                "cache": False,
                "n_ctx": 4096,
                "icl_rule": rule,
                "similarity": "bm25",
                "prefix_cache": prefix_cache,
                "prefix_dir": tmp_path / "prefixes",
                "threads": 1,  # the same arithmetic in every run, whatever the load (idle cores vary)
            }
        )
        chooser = Chooser("spm", settings)
        try:
            out = [chooser.choose(*_probe(q), target) for q, target in PROBES]
            return out, chooser.method.backend.prefixes  # type: ignore[attr-defined]
        finally:
            chooser.close()

    scratch, none = run(False)
    assert none is None and not (tmp_path / "prefixes").exists()
    first, store = run(True)  # computes each prefix once, then restores it from memory
    again, fresh = run(True)  # a new backend: memory empty, states come from disk
    assert store.stats.stored >= 1 and fresh.stats.disk_hits >= 1 and fresh.stats.stored == 0
    if rule == "fixed":  # the same examples for every question: one state per attribute, reused
        assert store.stats.memory_hits >= 1
    for a, b, c in zip(scratch, first, again, strict=True):
        assert a.selected_index == b.selected_index == c.selected_index
        for pa, pb, pc in zip(a.predictions, b.predictions, c.predictions, strict=True):
            for name in pa:
                assert abs(pa[name] - pb[name]) <= 0.02 and abs(pa[name] - pc[name]) <= 0.02, (name, pa, pb, pc)


def test_no_cache_keeps_the_prefix_store_and_its_own_flag_turns_it_off(smollm2_path, tmp_path, cli):
    from support import CHOOSE_ARGS

    env = {"PLURALIGN_HOME": str(tmp_path / "home")}
    common = [*CHOOSE_ARGS, "--method", "spm-zeroshot", "--model", str(smollm2_path), "--n-ctx", "2048"]
    res = cli(*common, "--no-cache", "--no-prefix-cache", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "home" / "prefixes").exists()
    res = cli(*common, "--no-cache", "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert list((tmp_path / "home" / "prefixes").glob("*.prefix"))


def _passes(samples: int, temperature: float) -> list[JudgeRequest]:
    """The passes of one attribute: one request each, same conversation head, own seed."""
    base = _request(3, temperature=temperature)
    return [
        base.model_copy(update={"settings": base.settings.model_copy(update={"seed": 10 + k, "top_logprobs": 5})})
        for k in range(samples)
    ]


def test_passes_decoded_together_give_the_decision_of_passes_decoded_one_at_a_time(smollm2_path, tmp_path):
    """Parallel sequences of one context against one pass after another, on the demo and the
    probes: predictions within 0.05 (batched kernels round differently, so a greedy answer can
    part ways at a near-tie), hence the same choice wherever the distances to the target differ
    by more than the tolerance allows (SmolLM2's scores nearly tie; the 1.5B judge's figures are
    in docs/results.md)."""
    import math

    from pluralign.api import Chooser
    from pluralign.settings import make_settings

    def run(parallel: int) -> list:
        settings = make_settings(
            {
                "model": str(smollm2_path),
                "cache": False,
                "n_ctx": 4096,
                "similarity": "bm25",
                "threads": 1,
                "parallel": parallel,
                "prefix_dir": tmp_path / "prefixes",
            }
        )
        chooser = Chooser("spm", settings)
        try:
            return [chooser.choose(*_probe(q), target) for q, target in PROBES]
        finally:
            chooser.close()

    tolerance = 0.1  # AVX2 kernels: 0.082 measured on an AMD EPYC without AVX-512
    for (_, target), a, b in zip(PROBES, run(1), run(8), strict=True):
        assert a.llm_calls == b.llm_calls
        for pa, pb in zip(a.predictions, b.predictions, strict=True):
            assert all(abs(pa[name] - pb[name]) <= tolerance for name in pa), (pa, pb)
        distances = sorted(math.dist([p[k] for k in target], list(target.values())) for p in a.predictions)
        if distances[1] - distances[0] > 2 * tolerance * math.sqrt(len(target)):
            assert a.selected_index == b.selected_index


def test_sampled_passes_decoded_together_keep_their_own_seeds(smollm2_path):
    """Each sequence draws with its own seed: the passes differ from one another, and the same
    seeds give the same answers again."""
    backend = LlamaCppBackend(str(smollm2_path), LlamaCppOptions(n_ctx=4096, threads=1, parallel=8))
    try:
        first = [r.raw[0] for r in backend.generate(_passes(4, 0.7))]
        again = [r.raw[0] for r in backend.generate(_passes(4, 0.7))]
    finally:
        backend.close()
    assert len(set(first)) >= 2 and first == again


def test_passes_that_do_not_fit_the_context_together_are_decoded_in_turn(smollm2_path):
    """Each pass reserves its answer's tokens; passes that would overflow the context together
    go one group after another instead of failing."""
    first = _passes(1, 0.0)[0]
    prompt = first.settings.max_tokens  # 1500 answer tokens reserved per pass
    backend = LlamaCppBackend(str(smollm2_path), LlamaCppOptions(n_ctx=2200, threads=1, parallel=8))
    try:
        assert prompt + 400 < 2200 < 2 * prompt
        results = backend.generate(_passes(3, 0.0))
    finally:
        backend.close()
    assert all(r.attempts == 1 and set(r.data) == {"A", "B", "C"} for r in results)


def test_the_quicker_steering_judge_makes_one_pass_per_attribute_with_scores_only(llamacpp_backend):
    """The quickest steering judge (``--steer-passes 1 --no-steer-reasoning``): one greedy pass
    per attribute whose answer holds scores only, from their log-probabilities."""
    from pluralign.choice.attributes import DEFAULT_REGISTRY
    from pluralign.choice.probes import make_probe
    from pluralign.prediction.methods.spm import ComparativeRegression, ZeroShotOptions

    method = ComparativeRegression(llamacpp_backend, ZeroShotOptions(), backend_estimator="logprobs")
    overrides = method.quicker(1, reasoning=False)
    assert overrides == {"samples": 1, "estimator": "logprobs", "reasoning": False}
    assert method.quicker(None, reasoning=True) == {}
    quick = method.with_options(method.options.override(**overrides))
    probe = make_probe("Should I help my neighbour?", ["Yes, gladly.", "No.", "Only if she pays."])
    attributes = DEFAULT_REGISTRY.require(["care", "authority"])
    judged = quick.assess(probe, attributes, seed=0)
    full = method.assess(probe, attributes, seed=0)
    assert judged.stats.requests == 2 and full.stats.requests == 2 * 3  # one pass an attribute, not one per order
    assert all(r == {"care": "", "authority": ""} for r in judged.reasonings or [])
    assert all(0 <= p[a] <= 1 for p in judged.predictions or [] for a in ("care", "authority"))
    assert set((judged.level_probs or {}).keys()) == {"care", "authority"}
    assert quick.config()["reasoning"] is False and "reasoning" not in method.config()


def test_the_steering_judges_reasonings_are_held_to_its_cap(llamacpp_backend):
    """``--steer-reasoning-chars``: the grammar holds every reasoning to the cap (SmolLM2 otherwise
    fills them to 512 characters), never above the method's own limit; the run identity names a
    cap only when it is not the default."""
    from pluralign.choice.attributes import DEFAULT_REGISTRY
    from pluralign.choice.probes import make_probe
    from pluralign.prediction.methods.spm import ComparativeRegression, ZeroShotOptions

    method = ComparativeRegression(llamacpp_backend, ZeroShotOptions(), backend_estimator="logprobs")
    assert method.quicker(2, True, 60) == {"samples": 2, "estimator": "logprobs", "reasoning_chars": 60}
    assert method.quicker(2, False, 60) == {"samples": 2, "estimator": "logprobs", "reasoning": False}
    tight = method.with_options(method.options.override(reasoning_chars=50))
    assert tight.quicker(None, True, 160) == {"reasoning_chars": 50}  # never above the method's own
    capped = method.with_options(method.options.override(**method.quicker(2, True, 60)))
    probe = make_probe("Should I help my neighbour?", ["Yes, gladly.", "No.", "Only if she pays."])
    judged = capped.assess(probe, DEFAULT_REGISTRY.require(["care"]), seed=0)
    reasons = [r["care"] for r in judged.reasonings or []]
    assert len(reasons) == 3 and all(0 < len(r) <= 60 for r in reasons), reasons
    assert capped.config()["reasoning_chars"] == 60 and "reasoning_chars" not in method.config()
