"""The llama.cpp backend with the real SmolLM2 GGUF."""

import json

import pytest

from pluralign import prompts
from pluralign.errors import ContextLengthError, ModelNotFoundError
from pluralign.judges.base import GenerationSettings, JudgeRequest, parse_answer
from pluralign.judges.llamacpp import LlamaCppBackend, schema_to_grammar_text
from pluralign.judges.models import resolve_gguf


def _request(n: int, temperature: float = 0.7, seed: int = 0, samples: int = 1) -> JudgeRequest:
    attr = __import__("pluralign").attributes.DEFAULT_REGISTRY["helpfulness"]
    choices = prompts.lettered([f"Answer number {i}: the result is {i + 3}." for i in range(n)])
    messages = prompts.conversation(
        prompts.comparative_system(attr), [], prompts.comparative_user(attr, "What is 2 + 2?", choices)
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


def test_digit_logprobs_match_llama_cpp_logits_all(llamacpp_backend, smollm2_path):
    """The cheap path (re-decode only where digits are) gives llama-cpp-python's own numbers."""
    request = _request(2, temperature=0.0, seed=3)
    request = request.model_copy(update={"settings": request.settings.model_copy(update={"top_logprobs": 5})})
    cheap = llamacpp_backend.generate([request])[0]
    full_backend = LlamaCppBackend(str(smollm2_path), n_ctx=4096, logits_all=True)
    try:
        full = full_backend.generate([request])[0]
    finally:
        full_backend.close()
    assert cheap.raw == full.raw and cheap.tokens and full.tokens and cheap.logprobs and full.logprobs
    assert "".join(cheap.tokens[0]) == "".join(full.tokens[0]) == cheap.raw[0]
    digit_positions = [k for k, tok in enumerate(cheap.tokens[0]) if any(c.isdigit() for c in tok)]
    assert len(digit_positions) >= 2  # both scores
    for k in digit_positions:
        ours, theirs = cheap.logprobs[0][k], full.logprobs[0][k]
        assert len(ours) >= 4
        best = max(theirs, key=theirs.__getitem__)
        assert max(ours, key=ours.__getitem__) == best
        assert abs(ours[best] - theirs[best]) < 0.05
    assert all(not cheap.logprobs[0][k] for k in range(len(cheap.tokens[0])) if k not in digit_positions)


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
    backend = LlamaCppBackend(str(smollm2_path), n_ctx=256)
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
