"""The OpenAI-compatible protocol in process: the official ``openai`` client on the app itself
(Starlette's test client is the httpx client it sends through), the schema in ``/openapi.json``
checked by ``openapi-spec-validator``, the error table (status, type, param, code, and whether
the client retries), the parameter table, offline ``/docs``, and the pieces a stream is made of.
The same routes against real servers and models: ``test_openai_clients.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from test_service_inprocess import ASK, service

ROOT = Path(__file__).resolve().parent.parent
TARGET = {"care": 1.0}


def _openai(client: Any, sent: list[httpx.Request], key: str = "unused", retries: int = 2) -> Any:
    """The official client, sending through the in-process app; ``sent`` sees every try."""
    from openai import OpenAI

    client.event_hooks["request"] = [sent.append]
    return OpenAI(base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=retries)


# ---- the schema ------------------------------------------------------------------------------


def test_the_openapi_schema_is_valid_and_types_every_openai_route(tmp_path: Path):
    from openapi_spec_validator import validate

    with service(tmp_path) as client:
        spec = client.get("/openapi.json").json()
    validate(spec)
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
    assert chat["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    for status in ("400", "401", "503", "504"):
        assert chat["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "422" not in chat["responses"]  # bad input is a 400 on the OpenAI routes, documented as one
    for path in ("/v1/rerank", "/v2/rerank"):
        rerank = spec["paths"][path]["post"]
        assert rerank["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RerankRequest")
        assert rerank["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RerankResponse")
    listed = spec["paths"]["/v1/chat/completions"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listed["schema"]["$ref"].endswith("/ChatCompletionList")
    assert spec["paths"]["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    fields = spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert {"max_completion_tokens", "response_format", "stream_options", "tools", "pluralign"} <= set(fields)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_another_host(tmp_path: Path, page: str):
    with service(tmp_path) as client:
        html = client.get(page)
        assert html.status_code == 200 and "/openapi.json" in html.text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text) + re.findall(r"url: *'([^']+)'", html.text)
        assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        scripts = [a for a in assets if a.endswith(".js")]
        assert scripts and all(client.get(a).status_code == 200 for a in scripts)


# ---- every parameter has a rule --------------------------------------------------------------


def test_every_field_of_the_chat_request_has_a_rule_and_the_docs_show_it():
    from pluralign.server.openai.protocol import PARAMETER_RULES, ChatCompletionRequest

    assert list(PARAMETER_RULES) == list(ChatCompletionRequest.model_fields)
    table = (ROOT / "docs" / "http-api.md").read_text()
    for name, rule in PARAMETER_RULES.items():
        assert f"| `{name}` | {rule} |" in table, name


def test_every_field_of_the_rerank_request_has_a_rule_and_the_docs_show_it():
    from pluralign.server.openai.protocol import RERANK_RULES, RerankRequest

    assert list(RERANK_RULES) == list(RerankRequest.model_fields)
    table = (ROOT / "docs" / "http-api.md").read_text()
    for name, rule in RERANK_RULES.items():
        assert f"| `{name}` | {rule} |" in table, name


@pytest.mark.parametrize("field", ["tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"])
def test_what_cannot_be_steered_is_refused_naming_it(tmp_path: Path, field: str):
    import openai

    function = {"name": "f", "parameters": {}}
    values = {"tools": [{"type": "function", "function": function}], "tool_choice": "auto",
              "functions": [function], "function_call": "auto", "parallel_tool_calls": True}  # fmt: skip
    sent: list[httpx.Request] = []
    with service(tmp_path) as client:
        api = _openai(client, sent)
        with pytest.raises(openai.BadRequestError) as caught:
            api.chat.completions.create(
                model="pluralign", messages=ASK, extra_body={field: values[field], "pluralign": {"target": TARGET}}
            )
    error = caught.value.body
    assert caught.value.status_code == 400 and error["param"] == field and error["code"] == "unsupported_parameter"
    assert error["type"] == "invalid_request_error" and "cannot be steered" in error["message"]
    assert len(sent) == 1  # a 400 is not retried


# ---- the error table -------------------------------------------------------------------------

CASES = [
    # (what is sent, status, exception, param, code)
    ({"extra_body": {"foo": 1}}, 400, "BadRequestError", "foo", "unsupported_parameter"),
    ({"temperature": 3}, 400, "BadRequestError", "temperature", "invalid_value"),
    ({"n": 9}, 400, "BadRequestError", "n", "invalid_value"),
    ({"stop": ["a", "b", "c", "d", "e"]}, 400, "BadRequestError", "stop", "invalid_value"),
    ({"top_logprobs": 21}, 400, "BadRequestError", "top_logprobs", "invalid_value"),
    ({"seed": -1}, 400, "BadRequestError", "seed", "invalid_value"),
    ({"metadata": {"k": "v" * 600}}, 400, "BadRequestError", "metadata.k", "invalid_value"),
    ({"user": "a\nb"}, 400, "BadRequestError", "user", "invalid_value"),
    ({"messages": [{"role": "system", "content": "hi"}]}, 400, "BadRequestError", "messages", "invalid_value"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, 400, "BadRequestError", "messages[0].role", "invalid_value"),
    ({"extra_body": {"pluralign": {"target": {"kindness": 1}}}}, 400, "BadRequestError", "pluralign.target", None),
    ({"extra_body": {"pluralign": {"profile": "../x"}}}, 400, "BadRequestError", "pluralign.profile", None),
    ({"extra_body": {"pluralign": None}, "model": "pluralign/ghost"}, 400, "BadRequestError", "model", None),
    ({"extra_body": {"pluralign": None}}, 400, "BadRequestError", "pluralign", None),
]


@pytest.mark.parametrize(("sent_kw", "status", "exception", "param", "code"), CASES)
def test_the_error_table(tmp_path: Path, sent_kw: dict, status: int, exception: str, param: str, code: str | None):
    import openai

    kw = {"model": "pluralign", "messages": ASK, **sent_kw}
    kw["extra_body"] = {"pluralign": {"target": TARGET}, **kw.get("extra_body", {})}
    if kw["extra_body"].get("pluralign", 0) is None:
        del kw["extra_body"]["pluralign"]
    sent: list[httpx.Request] = []
    with service(tmp_path) as client:
        with pytest.raises(getattr(openai, exception)) as caught:
            _openai(client, sent).chat.completions.create(**kw)
        assert client.app.state.pluralign.users.completion_responses("default")[0] == []  # nothing stored
    error = caught.value.body
    assert caught.value.status_code == status and error["param"] == param, error
    assert error["type"] == "invalid_request_error" and isinstance(error["code"], str), error
    assert code is None or error["code"] == code, error
    assert "\n" not in error["message"] and len(sent) == 1


def test_a_wrong_key_is_a_401_the_client_does_not_retry(tmp_path: Path):
    import openai

    sent: list[httpx.Request] = []
    with service(tmp_path, keys={"app": "the-right-key-1234"}) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            _openai(client, sent, key="a-wrong-key").chat.completions.create(model="pluralign", messages=ASK)
        assert _openai(client, sent, key="the-right-key-1234").models.list().data[0].id == "pluralign"
    assert caught.value.body["type"] == "authentication_error" and caught.value.body["code"] == "invalid_api_key"
    assert len(sent) == 2 and "the-right-key" not in json.dumps(caught.value.body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nothing"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models/ghost"),
        ("DELETE", "/v1/models"),
        ("GET", "/v1/chat/completions/chatcmpl-none"),
    ],
)
def test_every_unknown_v1_route_answers_in_the_openai_shape(tmp_path: Path, method: str, path: str):
    with service(tmp_path) as client:
        res = client.request(method, path, json={} if method == "POST" else None)
    assert res.status_code in (404, 405), res.text
    error = res.json()["error"]
    assert error["type"] == "invalid_request_error" and isinstance(error["code"], str) and error["message"]


def test_the_client_sees_a_missing_completion_as_not_found(tmp_path: Path):
    import openai

    with service(tmp_path) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            _openai(client, []).chat.completions.retrieve("chatcmpl-none")
    assert caught.value.body["param"] == "completion_id" and caught.value.body["code"] == "not_found"


def test_too_large_and_not_json_are_openai_shaped(tmp_path: Path):
    with service(tmp_path, max_body_bytes=2_000) as client:
        big = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 5_000}]})
        plain = client.post("/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"})
        duplicate = client.post(
            "/v1/chat/completions",
            content=b'{"model": "a", "model": "b"}',
            headers={"content-type": "application/json"},
        )
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    assert plain.status_code == 415 and plain.json()["error"]["type"] == "invalid_request_error"
    assert duplicate.status_code == 400 and "appears twice" in duplicate.json()["error"]["message"]


def test_a_context_overflow_upstream_is_a_400_the_client_does_not_retry(tmp_path: Path, scripted):
    """llama.cpp's own words for a prompt over the context (the fault forced by a scripted
    upstream; the real one: test_openai_clients.py)."""
    import openai

    said = {"error": {"message": "Requested tokens (5000) exceed context window of 4096", "type": "invalid_request"}}
    upstream, _ = scripted([("raw", 400, {"content-type": "application/json"}, json.dumps(said).encode())] * 3)
    sent: list[httpx.Request] = []
    with service(tmp_path, generator={"generator_base_url": f"{upstream}/v1", "candidates": 2}) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            _openai(client, sent).chat.completions.create(
                model="pluralign", messages=ASK, extra_body={"pluralign": {"target": TARGET}}
            )
    assert caught.value.body["code"] == "context_length_exceeded" and caught.value.body["param"] == "messages"
    assert len(sent) == 1


# ---- the pieces of a steered completion ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "response_format", "ok"),
    [
        ("plain words", None, True),
        ("plain words", {"type": "text"}, True),
        ('{"a": 1}', {"type": "json_object"}, True),
        ("[1, 2]", {"type": "json_object"}, False),
        ('{"a": 1', {"type": "json_object"}, False),
        ('{"a": 1}', {"type": "json_schema", "json_schema": {"name": "x", "schema": {"required": ["b"]}}}, False),
        ('{"b": "x"}', {"type": "json_schema", "json_schema": {"name": "x", "schema": {"required": ["b"]}}}, True),
    ],
)
def test_only_candidates_that_satisfy_the_response_format_are_judged(text: str, response_format: Any, ok: bool):
    from pluralign.server.openai.chat import satisfies

    assert satisfies(text, response_format) is ok


def test_identical_candidates_are_judged_once():
    from pluralign.prediction.generators import Candidates
    from pluralign.server.openai.chat import distinct
    from pluralign.support.errors import UpstreamError

    made = Candidates(texts=["Yes.", "No.", "Yes.", "  ", "No."], model="m")
    assert distinct(made, None) == [0, 1]
    with pytest.raises(UpstreamError, match="no usable candidate that satisfies response_format json_object"):
        distinct(made, {"type": "json_object"})


def test_a_stream_has_no_empty_choices_chunk_unless_usage_is_asked_for():
    from pluralign.server.openai.chat import chunks
    from pluralign.server.openai.protocol import ChatChoice, ChatCompletion, ResponseMessage, SteerInfo, Usage

    completion = ChatCompletion(
        id="chatcmpl-1", created=1, model="m",
        choices=[ChatChoice(index=i, message=ResponseMessage(content=f"answer {i}"), finish_reason="length")
                 for i in range(2)],
        usage=Usage(prompt_tokens=1, completion_tokens=2, total_tokens=3),
        pluralign=SteerInfo(selected_index=0, explanation="e", target={}, method="m", candidates=[], order=[0, 1]),
    )  # fmt: skip
    plain = chunks(completion, include_usage=False)
    assert all(c.choices and c.id == "chatcmpl-1" and c.usage is None for c in plain)
    assert plain[-1].pluralign is not None and [c.pluralign for c in plain[:-1]] == [None] * (len(plain) - 1)
    assert "".join(c.choices[0].delta.content or "" for c in plain if c.choices[0].index == 1) == "answer 1"
    with_usage = chunks(completion, include_usage=True)
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None and len(with_usage) == len(plain) + 1


def test_temperature_zero_draws_one_candidate_and_sampling_settings_reach_the_generator(tmp_path: Path):
    from pluralign.server.openai.chat import draw_of
    from pluralign.server.openai.protocol import ChatCompletionRequest

    with service(tmp_path, generator={"candidates": 4}) as client:
        s = client.app.state.pluralign
        zero = draw_of(ChatCompletionRequest(messages=ASK, temperature=0), s)
        full = draw_of(
            ChatCompletionRequest(
                messages=ASK, max_tokens=50, max_completion_tokens=30, stop="\n", top_p=0.5, seed=4,
                presence_penalty=1, frequency_penalty=-1, logit_bias={"7": -100}, logprobs=True, top_logprobs=2,
                response_format={"type": "json_object"},
            ),
            s,
        )  # fmt: skip
    assert zero.k == 1 and zero.temperature == 0
    assert (full.k, full.max_tokens, full.stop, full.top_p, full.seed) == (4, 30, ["\n"], 0.5, 4)
    assert (full.presence_penalty, full.frequency_penalty, full.logit_bias) == (1, -1, {"7": -100})
    assert (full.logprobs, full.top_logprobs, full.response_format) == (True, 2, {"type": "json_object"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("presence_penalty", 1.0),
        ("frequency_penalty", 1.0),
        ("logit_bias", {"7": -100}),
        ("logprobs", True),
    ],
)
def test_the_local_generator_refuses_what_it_cannot_honour(field: str, value: Any):
    from pluralign.prediction.generators import Draw
    from pluralign.prediction.generators.llamacpp import refuse_what_llama_cannot
    from pluralign.support.errors import UnsupportedParameter

    with pytest.raises(UnsupportedParameter) as caught:
        refuse_what_llama_cannot(Draw(k=2, temperature=1.0, max_tokens=8, **{field: value}))
    assert caught.value.param == field


# ---- the async API ---------------------------------------------------------------------------


def test_achoose_leaves_the_event_loop_free():
    """While the chooser works on its thread, the loop keeps running other tasks."""
    import asyncio

    import pluralign
    from pluralign.api import Chooser

    async def main() -> tuple[int, Any, Any]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        chooser = Chooser("random")
        try:
            one = await chooser.achoose("q", ["a", "b", "c"], TARGET, seed=3)
        finally:
            chooser.close()
        two = await pluralign.achoose("q", ["a", "b", "c"], TARGET, method="random", seed=3)
        ticker.cancel()
        return ticks, one, two

    ticks, one, two = asyncio.run(main())
    assert ticks > 0 and one.selected_index == two.selected_index
    assert one == Chooser("random").choose("q", ["a", "b", "c"], TARGET, seed=3)


def test_the_package_says_it_is_typed():
    assert (ROOT / "src" / "pluralign" / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "pyproject.toml").read_text()


# ---- rerank ----------------------------------------------------------------------------------


def test_group_judgements_join_side_by_side():
    from pluralign.prediction.methods.base import Assessment, CallStats

    one = Assessment(
        predictions=[{"care": 0.1}, {"care": 0.9}],
        reasonings=[{"care": "a"}, {"care": "b"}],
        level_probs={"care": [{"0.1": 1.0}, {"0.9": 1.0}]},
        stats=CallStats(calls=2, prompt_tokens=5),
    )
    two = Assessment(predictions=[{"care": 0.5}], reasonings=[{"care": "c"}], level_probs={"care": [{"0.5": 1.0}]},
                    draws={"care": [[0.5]]}, stats=CallStats(calls=1, prompt_tokens=7))  # fmt: skip
    joined = Assessment.side_by_side([one, two])
    assert joined.predictions == [{"care": 0.1}, {"care": 0.9}, {"care": 0.5}]
    assert [r["care"] for r in joined.reasonings or []] == ["a", "b", "c"] and joined.draws is None
    assert len((joined.level_probs or {})["care"]) == 3 and (joined.stats.calls, joined.stats.prompt_tokens) == (3, 12)
    with pytest.raises(ValueError, match="predictions"):
        Assessment.side_by_side([one, Assessment(choice=0)])


def test_rerank_limits_and_a_method_that_only_picks(tmp_path: Path):
    body = {"query": "q", "target": TARGET}
    with service(tmp_path, max_documents=12) as client:
        few = client.post("/v2/rerank", json={**body, "documents": ["a", "b", "c"], "top_n": 2})
        many = client.post("/rerank", json={**body, "documents": [f"d{k}" for k in range(11)]})
        over = client.post("/v1/rerank", json={**body, "documents": [f"d{k}" for k in range(13)]})
    assert few.status_code == 200 and len(few.json()["results"]) == 2
    assert all(r["document"] is None for r in few.json()["results"])  # Cohere v2: no text unless asked
    assert many.status_code == 400 and "predicts no attribute values" in many.json()["error"]["message"]
    assert over.status_code == 400 and over.json()["error"]["param"] == "documents"
