"""The OpenAI-compatible backend: a real llama_cpp.server, and a scripted server for faults."""

from __future__ import annotations

import json
import time

import pytest

from pluralign.prediction import prompts
from pluralign.prediction.judges.base import ChatMessage, GenerationSettings, JudgeRequest
from pluralign.prediction.judges.openai import OpenAIBackend, OpenAIOptions
from pluralign.support.errors import BackendUnavailableError, ContextLengthError, InvalidOutputError
from support import free_port

SCHEMA = prompts.comparative_schema(["A", "B"])
VALID = json.dumps({"A": {"reasoning": "Fine.", "score": 70}, "B": {"reasoning": "Weak.", "score": 20}})


def _request(seed: int = 0, question: str = "What is 2 + 2?") -> JudgeRequest:
    return JudgeRequest(
        messages=[
            ChatMessage(role="system", content="Rate each response from 0 to 100 as JSON."),
            ChatMessage(role="user", content=f"{question}\nA: 4\nB: 5"),
        ],
        json_schema=SCHEMA,
        settings=GenerationSettings(temperature=0.7, seed=seed, max_tokens=1500),
    )


# ---- against a real server ----------------------------------------------------------------


def test_real_server_concurrent_requests(llama_server):
    backend = OpenAIBackend("smollm2", OpenAIOptions(base_urls=[llama_server], concurrency=4, timeout=300))
    from concurrent.futures import ThreadPoolExecutor

    from pluralign.support.errors import InvalidOutputError

    def one(i: int):
        try:
            return backend.generate([_request(seed=i, question=f"What is 2 + {i}?")])[0]
        except InvalidOutputError:  # the 135M model can write a raw newline in a string: strict JSON refuses it
            return None

    with ThreadPoolExecutor(6) as pool:
        answered = list(pool.map(one, range(6)))
    results = [r for r in answered if r is not None]
    assert len(results) >= 4, answered
    for r in results:
        assert set(r.data) == {"A", "B"} and 0 <= r.data["A"]["score"] <= 100
        assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    # llama-cpp-python's server rejects the json_schema form; the backend switches to json_object
    assert backend.response_format == "json_object"


# ---- scripted faults ----------------------------------------------------------------------


def _backend(urls: list[str], **kw) -> OpenAIBackend:
    kw.setdefault("backoff", 0.05)
    kw.setdefault("timeout", 5)
    kw.setdefault("response_format", "json_schema")
    return OpenAIBackend("m", OpenAIOptions(base_urls=urls, **kw))


@pytest.mark.parametrize("query", ["?api-version=2024-02-01", "/?api-version=2024-02-01&x=1"])
def test_a_base_urls_query_stays_the_query_of_each_request(scripted, query):
    """Azure's ``?api-version=`` or a proxy's token: the path goes before the query, not after it."""
    url, script = scripted([("ok", VALID)])
    _backend([url + query]).generate([_request()])
    assert script.paths == ["/v1/chat/completions" + query.lstrip("/")], script.paths


def test_a_base_url_with_a_fragment_is_refused():
    from pluralign.support.errors import InputError

    with pytest.raises(InputError, match=r"has a fragment \(#...\), which no request sends"):
        _backend(["http://127.0.0.1:9/v1#part"])


def test_500_then_success(scripted):
    url, script = scripted([("status", 500, {}, "boom"), ("ok", VALID)])
    result = _backend([url]).generate([_request()])[0]
    assert result.data["A"]["score"] == 70 and script.hits == 2


def test_429_honours_retry_after(scripted):
    url, script = scripted([("status", 429, {"Retry-After": "1"}, "slow down"), ("ok", VALID)])
    t0 = time.perf_counter()
    result = _backend([url]).generate([_request()])[0]
    assert time.perf_counter() - t0 >= 0.95 and result.data["B"]["score"] == 20 and script.hits == 2


def test_invalid_json_is_reasked(scripted):
    url, script = scripted([("ok", '{"A": {"reasoning": "x", '), ("ok", VALID)])
    result = _backend([url]).generate([_request()])[0]
    assert result.attempts == 2 and result.usage.completion_tokens == 14 and script.hits == 2


def test_greedy_request_is_reasked_with_sampling(scripted):
    """At temperature 0 a re-ask would get the same broken answer back; it samples instead."""
    url, script = scripted([("ok", '{"A": {"reasoning": "x", '), ("ok", VALID)])
    greedy = _request().model_copy(update={"settings": GenerationSettings(temperature=0.0, seed=5, max_tokens=99)})
    result = _backend([url]).generate([greedy])[0]
    assert result.attempts == 2 and result.data["A"]["score"] == 70
    first, second = script.bodies
    assert first["temperature"] == 0.0 and second["temperature"] == 0.7
    assert first["seed"] != second["seed"] and first["max_tokens"] == second["max_tokens"] == 99


def test_never_valid_json_says_how_many_tries(scripted):
    url, _ = scripted([("ok", "not json at all")])
    with pytest.raises(InvalidOutputError, match="after 3 tries"):
        _backend([url]).generate([_request()])


def test_hang_past_timeout_ends_in_clear_error(scripted):
    url, _ = scripted([("hang", 30)])
    t0 = time.perf_counter()
    with pytest.raises(BackendUnavailableError, match=r"after 2 tries.*ReadTimeout"):
        _backend([url], timeout=0.5, max_retries=1).generate([_request()])
    assert time.perf_counter() - t0 < 15  # two tries of 0.5 s, not the server's 30 s


def test_connection_refused():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendUnavailableError, match=r"unreachable after 3 tries.*ConnectError"):
        _backend([url], max_retries=2).generate([_request()])


def test_context_length_error(scripted):
    msg = json.dumps(
        {
            "error": {
                "message": "This model's maximum context length is 4096 tokens. However, you "
                "requested 5000 tokens in the messages."
            }
        }
    )
    url, _ = scripted([("status", 400, {}, msg)])
    with pytest.raises(ContextLengthError, match=r"needs 5000 .* holds 4096 \(904 too many\)"):
        _backend([url]).generate([_request()])


def test_round_robin_over_replicas_and_failover(scripted):
    url_a, a = scripted([("ok", VALID)])
    url_b, b = scripted([("ok", VALID)])
    results = _backend([url_a, url_b], concurrency=2).generate([_request(seed=i) for i in range(8)])
    assert len(results) == 8 and a.hits == 4 and b.hits == 4
    dead = f"http://127.0.0.1:{free_port()}/v1"
    url_c, c = scripted([("ok", VALID)])
    results = _backend([dead, url_c]).generate([_request(seed=i) for i in range(3)])
    assert len(results) == 3 and c.hits == 3  # requests that hit the dead replica moved on


def test_the_samples_and_attributes_of_one_item_go_out_together(scripted, tmp_path):
    """spm sends every sample of every attribute of an item in one batch; the openai backend
    has them in flight at once (here 2 attributes x 3 samples)."""
    from pluralign.api import Chooser
    from pluralign.settings import make_settings

    answer = json.dumps({"A": {"reasoning": "Fine.", "score": 70}, "B": {"reasoning": "Weak.", "score": 20}})
    url, script = scripted([("gate", 6, 6, 0.0, answer)])
    settings = make_settings(
        {
            "backend": "openai",
            "base_urls": [url],
            "model": "m",
            "samples": 3,
            "cache": False,
            "response_format": "json_schema",
        }
    )
    chooser = Chooser("spm-zeroshot", settings)
    res = chooser.choose("Q?", ["a", "b"], {"care": 1.0, "fairness": 0.5})
    assert script.hits == 6 and len(res.samples["care"]) == 3
    assert script.peak == 6  # all six in flight at once: one round trip, not six


# ---- deadlines -----------------------------------------------------------------------------


def test_a_cancelled_decision_ends_its_hanging_request_at_once(scripted):
    """A cancel from another thread (the service's client went away) wakes the request waiting on
    the server at once, nothing polling for it; a deadline bounds it."""
    import threading

    from pluralign.support.deadline import deadline
    from pluralign.support.errors import DeadlineExceeded

    url, script = scripted([("hang", 20)])
    backend = _backend([url], timeout=60, max_retries=0)
    with deadline(None) as handle:
        threading.Timer(0.3, handle.cancel).start()
        t0 = time.perf_counter()
        with pytest.raises(DeadlineExceeded, match="cancelled: the client went away"):
            backend.generate([_request()])
    assert time.perf_counter() - t0 < 10 and script.hits == 1  # not the server's 20 s
    with deadline(0.4), pytest.raises(DeadlineExceeded, match=r"past its deadline of 0\.4 s"):
        backend.generate([_request()])


# ---- the server's form of JSON ---------------------------------------------------------------

REFUSED = ("status", 500, {}, "Input should be 'text' or 'json_object': got 'json_schema'")


def test_auto_learns_the_servers_form_from_one_request_before_sending_the_rest(scripted):
    """A server that takes only ``json_object`` refuses one request, not every one in flight."""
    url, script = scripted([REFUSED, ("ok", VALID)])
    backend = _backend([url], response_format="auto", concurrency=8)
    results = backend.generate([_request(seed=i) for i in range(8)])
    forms = [b["response_format"]["type"] for b in script.bodies]
    assert len(results) == 8 and forms == ["json_schema"] + ["json_object"] * 8
    assert backend.response_format == "json_object"


def test_auto_keeps_the_newer_form_once_the_server_takes_it(scripted):
    url, script = scripted([("slow", 1.0, VALID), ("gate", 7, 8, 0.3, VALID)])
    backend = _backend([url], response_format="auto", concurrency=8)
    assert len(backend.generate([_request(seed=i) for i in range(8)])) == 8
    assert [b["response_format"]["type"] for b in script.bodies] == ["json_schema"] * 8
    assert script.arrivals[1] - script.arrivals[0] >= 1.0  # the first alone: the rest came after its answer
    assert backend.response_format == "json_schema" and script.peak == 7  # then the 7 at once
