"""The transformers backend: SmolLM2 loaded from its GGUF, xgrammar-constrained decoding."""

import json

import pytest

from pluralign.prediction import prompts
from pluralign.prediction.judges.base import ChatMessage, GenerationSettings, JudgeRequest
from pluralign.support.errors import ModelNotFoundError

pytestmark = pytest.mark.slow  # real models


@pytest.fixture(scope="module")
def backend():
    from pluralign.prediction.judges.transformers import TransformersBackend, TransformersOptions

    b = TransformersBackend("smollm2-135m", TransformersOptions(batch_size=4))
    yield b
    b.close()


def _request(n: int, seed: int) -> JudgeRequest:
    letters = prompts.letters_for(n)
    return JudgeRequest(
        messages=[
            ChatMessage(role="system", content="Rate each response from 0 to 100. Answer in JSON."),
            ChatMessage(
                role="user",
                content="Q: capital of France?\n"
                + "\n".join(f"{k}: {c}" for k, c in zip(letters, ["Paris", "Lyon", "Rome"], strict=False)),
            ),
        ],
        json_schema=prompts.comparative_schema(letters),
        settings=GenerationSettings(temperature=0.0, seed=seed, max_tokens=300),
    )


def test_batched_schema_valid(backend):
    results = backend.generate([_request(2, 0), _request(3, 1), _request(2, 2)])
    assert [sorted(r.data) for r in results] == [["A", "B"], ["A", "B", "C"], ["A", "B"]]
    for r in results:
        assert json.loads(r.raw[0]) == r.data
        assert all(0 <= v["score"] <= 100 for v in r.data.values())
        assert r.usage.prompt_tokens > 10 and r.usage.completion_tokens > 5


def test_greedy_is_deterministic(backend):
    a = backend.generate([_request(2, 5)])[0]
    b = backend.generate([_request(2, 5)])[0]
    assert a.raw == b.raw


def test_system_message_merged_when_template_has_no_system_role(backend):
    original = backend._tok.chat_template
    backend._tok.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}"
        "{% endif %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}<assistant>"
    )
    try:
        text = backend.render([ChatMessage(role="system", content="SYS"), ChatMessage(role="user", content="USER")])
    finally:
        backend._tok.chat_template = original
    assert text.startswith("<user>SYS\nUSER")


def test_missing_local_model(tmp_path):
    from pluralign.prediction.judges.transformers import TransformersBackend

    with pytest.raises(ModelNotFoundError, match="does not exist"):
        TransformersBackend(str(tmp_path / "nope"))
