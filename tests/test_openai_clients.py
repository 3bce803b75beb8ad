"""The steering proxy as an application developer meets it: a real `pluralign serve` (judge:
SmolLM2 in process) whose generator is a real `llama_cpp.server` (SmolLM2), reached by the
clients apps use: `openai` (sync, async, streamed with the docs' loop, every parameter of the
table), `langchain-openai`, `litellm` and `cohere`; a raw SSE reader for the keep-alives."""

from __future__ import annotations

import asyncio
import io
import json
import os
from contextlib import redirect_stdout
from typing import Any

import httpx
import pytest

from support import start_server, stop

pytestmark = pytest.mark.slow  # real models and servers

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM reads its bundled price list, offline

CARER = {"care": 1.0}
DEFAULT = {"care": 0.2}
ASK = [{"role": "user", "content": "My neighbour asks me to water her plants while she is away. What do I say?"}]
DOCUMENTS = ["Say no: plants are not your job.", "Say yes, and ask how often they need water.", "Ignore her."]


@pytest.fixture(scope="module")
def proxy(llama_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxy")
    (tmp / "profiles").mkdir()
    (tmp / "profiles" / "carer.json").write_text(json.dumps(CARER))
    (tmp / "default.json").write_text(json.dumps(DEFAULT))
    proc, url = start_server(
        "--method", "spm-zeroshot", "--model", "smollm2-135m", "--n-ctx", "4096", "--threads", "1", "--no-cache",
        "--db", str(tmp / "users.sqlite"), "--generator-base-url", llama_server, "--generator-model", "smollm2",
        "--candidates", "3", "--generator-max-tokens", "40", "--profiles", str(tmp / "profiles"),
        "--default-target", str(tmp / "default.json"), "--stream-keepalive", "0.2", "--max-text-chars", "60000",
        "--max-responses", "3",
        env={"PLURALIGN_HOME": str(tmp / "home")},
    )  # fmt: skip
    yield url
    stop(proc)


def _openai(url: str, sent: list | None = None, **kw: Any) -> Any:
    from openai import OpenAI

    hooks = {"request": [sent.append]} if sent is not None else {}
    return OpenAI(
        base_url=f"{url}/v1", api_key="unused", timeout=300, http_client=httpx.Client(event_hooks=hooks), **kw
    )


def _steer(completion: Any) -> dict[str, Any]:
    return completion.model_extra["pluralign"]


# ---- openai ----------------------------------------------------------------------------------


def test_openai_sync_picks_a_person_by_model_name_and_honours_the_token_budget(proxy):
    out = _openai(proxy).chat.completions.create(model="pluralign/carer", messages=ASK, max_completion_tokens=6)
    steer = _steer(out)
    assert steer["target"] == CARER and len(steer["candidates"]) >= 2
    assert out.choices[0].finish_reason == "length" and out.usage.completion_tokens > 0
    assert all(c["finish_reason"] == "length" for c in steer["candidates"])
    assert out.choices[0].message.content == steer["candidates"][steer["order"][0]]["content"]


def test_the_default_target_steers_a_request_that_names_none(proxy):
    out = _openai(proxy).chat.completions.create(model="pluralign", messages=ASK, temperature=0, max_tokens=8)
    assert _steer(out)["target"] == DEFAULT and len(_steer(out)["candidates"]) == 1  # one candidate: not judged
    judged = _openai(proxy).chat.completions.create(model="anything", messages=ASK, max_tokens=8, seed=2)
    assert _steer(judged)["target"] == DEFAULT


def test_openai_async_clients_run_side_by_side(proxy):
    from openai import AsyncOpenAI

    async def main() -> list[Any]:
        client = AsyncOpenAI(base_url=f"{proxy}/v1", api_key="unused", timeout=300)
        asks = [
            client.chat.completions.create(model="pluralign/carer", messages=ASK, max_tokens=8, seed=s) for s in (1, 2)
        ]
        try:
            return await asyncio.gather(*asks)
        finally:
            await client.close()

    one, two = asyncio.run(main())
    assert one.id != two.id and _steer(one)["target"] == _steer(two)["target"] == CARER


def test_the_docs_streaming_loop_runs_unchanged(proxy):
    """OpenAI's documented loop indexes ``chunk.choices[0]``: no chunk may come without choices."""
    client = _openai(proxy)
    stream = client.chat.completions.create(model="pluralign/carer", messages=ASK, max_tokens=12, seed=4, stream=True)
    printed = io.StringIO()
    ids, chunks = set(), []
    with redirect_stdout(printed):
        for chunk in stream:
            print(chunk.choices[0].delta.content or "", end="")  # the loop from OpenAI's docs
            ids.add(chunk.id)
            chunks.append(chunk)
    steer = chunks[-1].model_extra["pluralign"]
    assert len(ids) == 1 and steer["target"] == CARER and all(c.usage is None for c in chunks)
    assert printed.getvalue() == steer["candidates"][steer["order"][0]]["content"]
    with_usage = list(
        client.chat.completions.create(
            model="pluralign/carer", messages=ASK, max_tokens=12, seed=4, stream=True,
            stream_options={"include_usage": True},
        )
    )  # fmt: skip
    assert with_usage[-1].choices == [] and with_usage[-1].usage.total_tokens > 0
    assert all(c.choices for c in with_usage[:-1])


def test_a_stream_sends_keep_alives_before_the_first_token(proxy):
    body = {"model": "pluralign/carer", "messages": ASK, "max_tokens": 24, "stream": True}
    lines = []
    with httpx.stream("POST", f"{proxy}/v1/chat/completions", json=body, timeout=300) as res:
        assert res.status_code == 200 and res.headers["content-type"].startswith("text/event-stream")
        for line in res.iter_lines():
            lines.append(line)
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert first_data > 0 and all(line in (": keep-alive", "") for line in lines[:first_data]), lines[:5]
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"


def _token_id(text: str) -> int:
    from llama_cpp import Llama

    from pluralign.prediction.weights import fetch

    vocab = Llama(str(fetch("smollm2-135m")), vocab_only=True, verbose=False)
    return vocab.tokenize(text.encode(), add_bos=False, special=False)[0]


PARAMETERS = {
    # field: (the request's extra fields, what the answer must show)
    "model": ({"model": "pluralign/carer"}, lambda out, base: _steer(out)["target"] == CARER),
    "messages": (
        {"messages": [*ASK, {"role": "assistant", "content": "Happy to."}, {"role": "user", "content": "Shorter?"}]},
        lambda out, base: out.choices[0].message.content != base.choices[0].message.content,
    ),
    "n": ({"n": 2, "temperature": 1.0}, lambda out, base: len(out.choices) == 2 and out.choices[1].index == 1),
    "temperature": ({"temperature": 0}, lambda out, base: len(_steer(out)["candidates"]) == 1),
    "top_p": ({"temperature": 1.0, "top_p": 1e-9}, lambda out, base: len(_steer(out)["candidates"]) == 1),
    "max_tokens": ({"max_tokens": 3}, lambda out, base: out.choices[0].finish_reason == "length"),
    "max_completion_tokens": (
        {"max_tokens": 30, "max_completion_tokens": 3},
        lambda out, base: out.choices[0].finish_reason == "length" and out.usage.completion_tokens <= 3 + 20,
    ),
    "stop": ({"stop": [" "]}, lambda out, base: " " not in out.choices[0].message.content),
    "presence_penalty": (
        {"presence_penalty": 2.0, "max_tokens": 30},
        lambda out, base: out.choices[0].message.content != base.choices[0].message.content,
    ),
    "frequency_penalty": (
        {"frequency_penalty": 2.0, "max_tokens": 30},
        lambda out, base: out.choices[0].message.content != base.choices[0].message.content,
    ),
    "logit_bias": (
        "banned",  # filled in below: the base answer's first token, banned
        lambda out, base: out.choices[0].message.content.split()[:1] != base.choices[0].message.content.split()[:1],
    ),
    "logprobs": (
        {"logprobs": True},
        lambda out, base: (
            out.choices[0].logprobs.content and all(t.logprob <= 0 for t in out.choices[0].logprobs.content)
        ),
    ),
    "top_logprobs": (
        {"logprobs": True, "top_logprobs": 2},
        lambda out, base: len(out.choices[0].logprobs.content[0].top_logprobs) == 2,
    ),
    "response_format": (
        {"response_format": {"type": "json_object"}, "temperature": 0.8, "max_tokens": 60},
        lambda out, base: all(isinstance(json.loads(c["content"]), dict) for c in _steer(out)["candidates"]),
    ),
    "seed": ({"temperature": 0.9, "seed": 11}, "same"),
    "user": ({"user": "param-tester"}, lambda out, base: _steer(out)["target"] == DEFAULT),
    "stream": ({"stream": True}, "stream"),
    "stream_options": ({"stream": True, "stream_options": {"include_usage": True}}, "stream"),
    "store": ({"store": True}, "stored"),
    "metadata": ({"metadata": {"test": "parameters"}}, "stored"),
    "pluralign": (
        {"extra_body": {"pluralign": {"target": {"care": 0.0}}}},
        lambda out, base: _steer(out)["target"] == {"care": 0.0},
    ),
}
REFUSED = {"tools", "tool_choice", "parallel_tool_calls", "functions", "function_call"}


def test_the_parameter_cases_cover_the_table():
    from pluralign.server.openai.protocol import PARAMETER_RULES

    assert set(PARAMETER_RULES) == set(PARAMETERS) | REFUSED


@pytest.mark.parametrize("field", list(PARAMETERS))
def test_every_parameter_of_the_table_reaches_the_answer(proxy, field: str):
    client = _openai(proxy)
    ask: dict[str, Any] = {"model": "pluralign", "messages": ASK, "temperature": 0, "max_tokens": 16}
    base = client.chat.completions.create(**ask)
    extra, check = PARAMETERS[field]
    if extra == "banned":
        extra = {"logit_bias": {str(_token_id(base.choices[0].message.content.split()[0])): -100}}
    kw = {**ask, **extra}
    if check == "stream":
        chunks = list(client.chat.completions.create(**kw))
        usage = [c for c in chunks if not c.choices]
        assert (len(usage) == 1) == (field == "stream_options") and len({c.id for c in chunks}) == 1
        return
    out = client.chat.completions.create(**kw)
    if check == "same":
        again = client.chat.completions.create(**kw)
        assert [c["content"] for c in _steer(out)["candidates"]] == [c["content"] for c in _steer(again)["candidates"]]
        return
    if check == "stored":
        listed = client.chat.completions.list(metadata=kw.get("metadata"), limit=100).data
        assert out.id in [c.id for c in listed] and client.chat.completions.retrieve(out.id).id == out.id
        return
    assert check(out, base), (field, out.choices[0].message.content, base.choices[0].message.content)


@pytest.mark.parametrize("field", sorted(REFUSED))
def test_what_cannot_be_steered_is_refused_by_name(proxy, field: str):
    import openai

    values = {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}], "tool_choice": "none",
              "parallel_tool_calls": False, "functions": [{"name": "f"}], "function_call": "none"}  # fmt: skip
    sent: list[httpx.Request] = []
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(proxy, sent).chat.completions.create(model="pluralign", messages=ASK, **{field: values[field]})
    assert caught.value.body["param"] == field and len(sent) == 1


def test_a_conversation_longer_than_the_generators_context_is_a_400_not_retried(proxy):
    import openai

    long = " ".join(f"{k % 10}" for k in range(9000))  # about 9,000 tokens for a 4,096-token generator
    sent: list[httpx.Request] = []
    with pytest.raises(openai.BadRequestError) as caught:
        _openai(proxy, sent, max_retries=3).chat.completions.create(
            model="pluralign/carer", messages=[{"role": "user", "content": long}]
        )
    assert caught.value.body["code"] == "context_length_exceeded" and len(sent) == 1


# ---- frameworks ------------------------------------------------------------------------------


def test_langchain_invoke_then_the_explanation_and_feedback_by_the_shown_position(proxy):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{proxy}/v1", api_key="unused", model="pluralign/carer", max_tokens=6, timeout=300)
    message = llm.invoke(ASK[0]["content"])
    completion_id = message.response_metadata["id"]
    assert message.response_metadata["finish_reason"] == "length" and completion_id.startswith("chatcmpl-")
    stored = _openai(proxy).chat.completions.retrieve(completion_id)
    steer = _steer(stored)
    assert stored.choices[0].message.content == message.content and steer["explanation"]
    feedback = httpx.post(
        f"{proxy}/v1/feedback", json={"user": "lc-user", "completion_id": completion_id, "choice": 0}, timeout=300
    )
    assert feedback.status_code == 200, feedback.text
    history = feedback.json()
    assert history["n_choices"] == 1 and set(history["profile"]["target"]) == {"care"}
    again = httpx.post(f"{proxy}/v1/feedback", json={"user": "lc-user", "completion_id": completion_id,
                                                       "chosen": steer["order"][0]}, timeout=300)  # fmt: skip
    assert again.json()["unchanged"] is True  # position 0 was that candidate


def test_langchain_stream_and_finding_its_completion_by_metadata(proxy):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=f"{proxy}/v1", api_key="unused", model="pluralign/carer", max_tokens=8, timeout=300,
        extra_body={"metadata": {"conversation": "lc-stream-1"}},
    )  # fmt: skip
    text = "".join(chunk.content for chunk in llm.stream(ASK[0]["content"]))
    found = _openai(proxy).chat.completions.list(metadata={"conversation": "lc-stream-1"}).data
    assert len(found) == 1 and found[0].choices[0].message.content == text
    assert _steer(found[0])["explanation"]


def test_litellm_completion_and_stream_keep_the_steering(proxy):
    import litellm

    common = {"model": "openai/pluralign/carer", "api_base": f"{proxy}/v1", "api_key": "unused", "messages": ASK}
    out = litellm.completion(**common, max_tokens=6)
    assert out.id.startswith("chatcmpl-") and out.pluralign["target"] == CARER
    chunks = list(litellm.completion(**common, max_tokens=6, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (streamed_id,) = {c.id for c in chunks}
    stored = _openai(proxy).chat.completions.retrieve(streamed_id)
    assert stored.choices[0].message.content == text and _steer(stored)["target"] == CARER


# ---- rerank ----------------------------------------------------------------------------------


def test_litellm_rerank_steers_by_model_name(proxy):
    import litellm

    out = litellm.rerank(
        model="cohere/pluralign/carer", api_base=proxy, api_key="unused", query=ASK[0]["content"],
        documents=DOCUMENTS, top_n=2,
    )  # fmt: skip
    assert len(out.results) == 2 and {r["index"] for r in out.results} <= {0, 1, 2}
    direct = httpx.post(
        f"{proxy}/v1/rerank", json={"query": ASK[0]["content"], "documents": DOCUMENTS, "profile": "carer"}, timeout=300
    ).json()
    assert [r["index"] for r in out.results] == [r["index"] for r in direct["results"][:2]]


def test_cohere_v1_and_v2_rerank_with_a_saved_profile_or_a_target(proxy):
    import cohere

    v1 = cohere.Client(base_url=proxy, api_key="unused", timeout=300)
    one = v1.rerank(model="pluralign/carer", query=ASK[0]["content"], documents=DOCUMENTS, return_documents=True)
    v2 = cohere.ClientV2(base_url=proxy, api_key="unused", timeout=300)
    two = v2.rerank(model="pluralign/carer", query=ASK[0]["content"], documents=DOCUMENTS)
    assert [r.index for r in one.results] == [r.index for r in two.results] and len(two.results) == 3
    assert one.results[0].document.text == DOCUMENTS[one.results[0].index]
    low = v2.rerank(
        model="pluralign", query=ASK[0]["content"], documents=DOCUMENTS,
        request_options={"additional_body_parameters": {"target": {"care": 0.0}}},
    )  # fmt: skip
    scores = {r.index: r.relevance_score for r in two.results}
    assert {r.index: r.relevance_score for r in low.results} != scores  # the target reached the judge's ranking


def test_rerank_judges_more_documents_than_one_prompt_holds_in_groups(proxy):
    """--max-responses 3: seven documents are judged as groups of 3, 2 and 2, then ranked together."""
    documents = [*DOCUMENTS, "Offer to water them and feed her cat.", "Ask for money.", "Say maybe.", "Say yes."]
    res = httpx.post(f"{proxy}/rerank", json={"query": ASK[0]["content"], "documents": documents, "target": CARER},
                     timeout=600)  # fmt: skip
    assert res.status_code == 200, res.text[:300]
    results = res.json()["results"]
    assert sorted(r["index"] for r in results) == list(range(7))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    over = httpx.post(f"{proxy}/v2/rerank", json={"query": "q", "documents": ["d"] * 101, "target": CARER})
    assert over.status_code == 400 and over.json()["error"]["param"] == "documents"


def test_the_models_list_names_every_saved_profile(proxy):
    ids = [m.id for m in _openai(proxy).models.list().data]
    assert ids == ["pluralign", "pluralign/carer"]
