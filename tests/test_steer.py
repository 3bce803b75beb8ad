"""The steering endpoints against a real `pluralign serve` (judge: SmolLM2 in process) whose
generator is a real `llama_cpp.server` (SmolLM2), through the official `openai` client:
/v1/chat/completions, /v1/rerank, /v1/feedback and the users' profiles in SQLite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support import PAIR, start_server, stop

pytestmark = pytest.mark.slow  # real models and servers

TARGET = {"care": 1.0}
ASK = [{"role": "user", "content": "My neighbour asks me to water her plants while she is away. What do I say?"}]


def _serve(tmp: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    return start_server(
        "--method", "spm-zeroshot", "--model", "smollm2-135m", "--n-ctx", "4096", "--threads", "1",
        "--no-cache", "--db", str(tmp / "users.sqlite"), *extra,
        env={"PLURALIGN_HOME": str(tmp / "home")},
    )  # fmt: skip


@pytest.fixture(scope="module")
def steer(llama_server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("steer")
    (tmp / "profiles").mkdir()
    (tmp / "profiles" / "carer.json").write_text(json.dumps(TARGET))
    proc, url = _serve(
        tmp, "--generator-base-url", llama_server, "--generator-model", "smollm2", "--candidates", "3",
        "--generator-max-tokens", "40", "--profiles", str(tmp / "profiles"),
    )  # fmt: skip
    yield url, tmp
    stop(proc)


def _client(url: str, **kw):
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=300, **kw)


def test_a_completion_returns_the_candidates_closest_to_the_target_first(steer):
    url, _ = steer
    out = _client(url).chat.completions.create(
        model="smollm2", messages=ASK, n=2, seed=3, extra_body={"pluralign": {"target": TARGET}}
    )
    steer_field = out.model_extra["pluralign"]
    candidates = steer_field["candidates"]
    assert out.object == "chat.completion" and len(out.choices) == 2 and len(candidates) == 3
    chosen = candidates[steer_field["selected_index"]]
    assert out.choices[0].message.content == chosen["content"] and chosen["rank"] == 0
    by_rank = sorted(candidates, key=lambda c: c["rank"])
    assert [c["content"] for c in by_rank[:2]] == [c.message.content for c in out.choices]
    assert all(by_rank[0]["distance"] <= c["distance"] for c in by_rank)
    assert all(set(c["predictions"]) == {"care"} for c in candidates)
    assert steer_field["explanation"] and 0 <= steer_field["confidence"] <= 1
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens > 0


def test_streaming_sends_the_chosen_response_and_the_steering_last(steer):
    url, _ = steer
    stream = _client(url).chat.completions.create(
        model="smollm2", messages=ASK, seed=3, stream=True, extra_body={"pluralign": {"profile": "carer"}}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].model_extra["pluralign"]
    assert last["target"] == TARGET
    assert text == last["candidates"][last["selected_index"]]["content"]
    assert chunks[0].object == "chat.completion.chunk"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"messages": ASK, "n": 4, "pluralign": {"target": TARGET}}, "n: at most 3"),
        ({"messages": ASK}, "no target"),
        ({"messages": ASK, "user": "nobody-yet"}, "no profile is stored"),
        ({"messages": ASK, "user": "a\nb", "pluralign": {"target": TARGET}}, "control characters"),
        ({"messages": ASK, "user": "\u202eevil", "pluralign": {"target": TARGET}}, "control characters"),
        ({"messages": ASK, "user": "u" * 300, "pluralign": {"target": TARGET}}, "1 to 256 characters"),
        ({"messages": ASK, "pluralign": {"profile": "ghost"}}, "no saved profile named 'ghost'"),
        ({"messages": ASK, "pluralign": {"profile": "../etc/passwd"}}, "letters, digits"),
        ({"messages": [], "pluralign": {"target": TARGET}}, "messages"),
        ({"messages": [{"role": "system", "content": "be nice"}], "pluralign": {"target": TARGET}}, "no user message"),
        ({"messages": ASK, "temperature": "hot", "pluralign": {"target": TARGET}}, "temperature"),
        ({"messages": ASK, "pluralign": {"target": {"kindness": 1}}}, "kindness"),
        ({"messages": ASK, "pluralign": {"target": TARGET, "extra": 1}}, "extra"),
        ({"messages": [{"role": "robot", "content": "hi"}], "pluralign": {"target": TARGET}}, "role"),
    ],
)
def test_bad_completion_requests_get_an_openai_shaped_400(steer, body, needle):
    url, _ = steer
    res = httpx.post(f"{url}/v1/chat/completions", json={"model": "x", **body}, timeout=60)
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error" and "\n" not in error["message"]
    assert isinstance(error["code"], str) and error["param"], error


def test_the_openai_client_raises_its_own_error_with_the_message(steer):
    import openai

    url, _ = steer
    with pytest.raises(openai.BadRequestError, match="no target"):
        _client(url, max_retries=0).chat.completions.create(model="x", messages=ASK)


def test_rerank_in_the_vllm_and_jina_shape(steer):
    url, _ = steer
    documents = ["Say no: plants are not your job.", "Say yes, and ask how often they need water.", "Ignore her."]
    res = httpx.post(
        f"{url}/v1/rerank",
        json={"model": "x", "query": ASK[0]["content"], "documents": documents, "top_n": 2, "target": TARGET},
        timeout=300,
    )
    assert res.status_code == 200, res.text
    results = res.json()["results"]
    assert len(results) == 2
    assert results[0]["relevance_score"] >= results[1]["relevance_score"]
    assert all(0 <= r["relevance_score"] <= 1 and documents[r["index"]] == r["document"]["text"] for r in results)
    bad = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": ["only one"], "target": TARGET}, timeout=30)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "documents"
    for user in ("a\x00b", "tab\there", "\u200bhidden"):  # the user is a stored label: one rule with /v1/feedback
        bad = httpx.post(f"{url}/v1/rerank", json={"query": "q", "documents": documents, "user": user}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "user", bad.text


def test_feedback_from_many_users_at_once_loses_nothing_and_stays_apart(steer):
    """200 posts from 20 users in parallel: each history has its 10 choices, and each profile
    is a `profile fit` of that history (users who always prefer care against users who always
    prefer authority get opposite profiles)."""
    from pluralign.choice.attributes import DEFAULT_REGISTRY
    from pluralign.people.profile import fit_profile
    from pluralign.people.userstore import UserStore

    url, tmp = steer
    users = [f"user {k} ✓" for k in range(20)]

    def post(job: tuple[str, int]) -> int:
        user, k = job
        chosen = 0 if users.index(user) % 2 == 0 else 1
        body = {**PAIR, "question": f"{PAIR['question']} ({k})", "user": user, "chosen": chosen}
        return httpx.post(f"{url}/v1/feedback", json=body, timeout=300).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(post, [(u, k) for u in users for k in range(10)]))
    assert statuses == [200] * 200
    store = UserStore(tmp / "users.sqlite")
    for i, user in enumerate(users):
        history = store.history("default", user)
        assert len(history) == 10 and {r.chosen for r in history} == {i % 2}
        shown = httpx.get(f"{url}/v1/users/{user}/profile", timeout=30).json()
        assert shown["n_choices"] == 10
        expected = fit_profile(DEFAULT_REGISTRY.require(["care", "authority"]), history)
        assert shown["profile"]["target"] == expected.target
    care_lover = httpx.get(f"{url}/v1/users/{users[0]}/profile", timeout=30).json()["profile"]["target"]
    rule_lover = httpx.get(f"{url}/v1/users/{users[1]}/profile", timeout=30).json()["profile"]["target"]
    assert care_lover != rule_lover


def test_feedback_on_a_completion_steers_that_users_next_completion(steer):
    url, _ = steer
    client = _client(url)
    first = client.chat.completions.create(
        model="x", messages=ASK, user="ann", seed=1, extra_body={"pluralign": {"target": TARGET}}
    )
    res = httpx.post(f"{url}/v1/feedback", json={"user": "ann", "completion_id": first.id, "chosen": 1}, timeout=300)
    assert res.status_code == 200 and res.json()["n_choices"] == 1, res.text
    stolen = httpx.post(f"{url}/v1/feedback", json={"user": "bob", "completion_id": first.id, "chosen": 0}, timeout=30)
    assert stolen.status_code == 422 and "another user" in stolen.json()["detail"]
    again = client.chat.completions.create(model="x", messages=ASK, user="ann", seed=2)
    assert set(again.model_extra["pluralign"]["target"]) == {"care"}
    assert httpx.delete(f"{url}/v1/users/ann", timeout=30).json()["forgotten"] is True
    assert httpx.get(f"{url}/v1/users/ann/profile", timeout=30).status_code == 404


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"user": "", **PAIR, "chosen": 0}, "user"),
        ({"user": "a\nb", **PAIR, "chosen": 0}, "control characters"),
        ({"user": 7, **PAIR, "chosen": 0}, "user"),
        ({"user": "x", **PAIR, "chosen": 2}, "out of range"),
        ({"user": "x", **PAIR, "chosen": "0"}, "chosen"),
        ({"user": "x", "chosen": 0}, "completion_id, or question and responses"),
        ({"user": "x", "completion_id": "chatcmpl-nope", "chosen": 0}, "no completion"),
    ],
)
def test_bad_feedback_gets_a_clear_422(steer, body, needle):
    url, _ = steer
    res = httpx.post(f"{url}/v1/feedback", json=body, timeout=30)
    assert res.status_code == 422 and needle in res.json()["detail"], res.text


@pytest.mark.parametrize(
    ("step", "needle"),
    [
        (("ok", ""), "usable candidate"),  # empty choices
        (("payload", {"choices": []}), "usable candidate"),
        (("raw", 200, {"content-type": "application/json"}, b"not json"), "not a chat completion"),
        (("payload", {"choices": None}), "not a chat completion"),
        (("payload", {"choices": [{"message": {"content": ["not", "text"]}}]}), "generator"),
        (("raw", 500, {"content-type": "application/json"}, b'{"error": "boom"}'), "generator answered 500"),
    ],
)
def test_a_generator_that_returns_no_usable_candidates_is_a_502(scripted, tmp_path, step, needle):
    url, _ = scripted([step])
    proc, base = _serve(tmp_path, "--generator-base-url", f"{url}/v1", "--candidates", "2")
    try:
        res = httpx.post(
            f"{base}/v1/chat/completions",
            json={"messages": ASK, "pluralign": {"target": TARGET}},
            timeout=120,
        )
    finally:
        stop(proc)
    assert res.status_code == 502, res.text
    assert needle in res.json()["error"]["message"] and res.json()["error"]["type"] == "upstream_error"


def test_the_openai_client_retries_a_full_queue_on_its_own(llama_server, tmp_path):
    """--max-queue 1: of four requests at once (candidates written fast, judged slowly), some are
    refused with 503 and Retry-After; the official client waits and retries them, and every one
    is answered."""
    from openai import OpenAI

    proc, url = _serve(
        tmp_path, "--generator-base-url", llama_server, "--generator-model", "smollm2", "--candidates", "2",
        "--generator-max-tokens", "4", "--max-queue", "1", "--estimator", "sample", "--samples", "4",
    )  # fmt: skip
    refused = []

    def count(response: httpx.Response) -> None:
        if response.status_code == 503:
            refused.append(response.headers.get("retry-after"))

    http = httpx.Client(event_hooks={"response": [count]}, timeout=300)
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=8, http_client=http)
    try:
        with ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(
                lambda k: client.chat.completions.create(
                    model="x", messages=ASK, seed=k, extra_body={"pluralign": {"target": TARGET}}
                ),
                range(4),
            ))  # fmt: skip
    finally:
        http.close()
        stop(proc)
    assert all(o.choices[0].message.content for o in outs)
    assert refused and all(r is not None and r.isdigit() for r in refused)


def test_kill_9_mid_way_loses_no_committed_feedback(tmp_path):
    from pluralign.people.userstore import UserStore

    proc, url = _serve(tmp_path)
    acknowledged = []

    def feed() -> None:
        for k in range(1000):
            try:
                res = httpx.post(f"{url}/v1/feedback", json={**PAIR, "user": "kim", "chosen": k % 2}, timeout=30)
            except httpx.HTTPError:
                return
            if res.status_code == 200:
                acknowledged.append(res.json()["n_choices"])

    worker = threading.Thread(target=feed)
    worker.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    worker.join(timeout=60)
    assert len(acknowledged) >= 5
    assert len(UserStore(tmp_path / "users.sqlite").history("default", "kim")) >= max(acknowledged)


def test_respond_prints_the_chosen_response(llama_server, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "pluralign", "respond", "--target", json.dumps(TARGET), "--question", ASK[0]["content"],
         "--generator-base-url", llama_server, "--generator-model", "smollm2", "--candidates", "2",
         "--generator-max-tokens", "30", "--method", "spm-zeroshot", "--model", "smollm2-135m", "--no-cache", "--json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PLURALIGN_HOME": str(tmp_path)},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["response"] == out["candidates"][out["selected_index"]] and len(out["candidates"]) == 2


def test_a_generator_that_refuses_n_gets_one_request_per_candidate(scripted, tmp_path):
    url, script = scripted([("raw", 400, {"content-type": "application/json"}, b'{"error": "n > 1 unsupported"}'),
                            ("ok", "Say yes, kindly."), ("ok", "Say no.")])  # fmt: skip
    proc, base = _serve(tmp_path, "--generator-base-url", f"{url}/v1", "--candidates", "2")
    try:
        body = {"messages": ASK, "seed": 5, "pluralign": {"target": TARGET}}
        res = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=300)
    finally:
        stop(proc)
    assert res.status_code == 200, res.text
    assert sorted(c["content"] for c in res.json()["pluralign"]["candidates"]) == ["Say no.", "Say yes, kindly."]
    assert script.bodies[0]["n"] == 2 and all("n" not in b for b in script.bodies[1:3])
    assert sorted(b["seed"] for b in script.bodies[1:3]) == [5, 6]  # a seed each


def test_every_steering_route_needs_the_service_key(tmp_path):
    env = {"PLURALIGN_HOME": str(tmp_path / "home"), "PL_KEY_FOR_TEST": "s3cret"}
    proc, url = start_server(
        "--method", "spm-zeroshot", "--model", "smollm2-135m", "--n-ctx", "4096", "--threads", "1", "--no-cache",
        "--db", str(tmp_path / "users.sqlite"), "--service-key-env", "PL_KEY_FOR_TEST", env=env,
    )  # fmt: skip
    try:
        for method, path in [("post", "/v1/chat/completions"), ("post", "/v1/rerank"), ("post", "/v1/feedback"),
                             ("get", "/v1/users/ann/profile"), ("delete", "/v1/users/ann")]:  # fmt: skip
            res = httpx.request(method, f"{url}{path}", json={}, timeout=30)
            assert res.status_code == 401, (path, res.text)
            body = res.json()
            assert ("error" in body) == (path in ("/v1/chat/completions", "/v1/rerank")), body
            assert "s3cret" not in res.text
        ok = httpx.get(f"{url}/v1/users/ann/profile", headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert ok.status_code == 404  # past the key: no such user yet
    finally:
        stop(proc)


def test_a_chat_longer_than_the_local_generators_context_is_a_400(smollm2_path, tmp_path):
    """The in-process generator (SmolLM2, 4,096 tokens): a conversation that cannot fit is the
    client's to shorten, said in one line, never a 500."""
    from test_service_inprocess import service

    long = " ".join(f"{k % 10}" for k in range(9000))  # 18,000 characters and about 9,000 tokens: within the limits
    with service(tmp_path, generator={"generator_model": str(smollm2_path), "candidates": 2}) as client:
        res = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": long}], "pluralign": {"target": TARGET}},
        )
    assert res.status_code == 400 and "context" in res.json()["error"]["message"], res.text


def test_the_local_generator_and_the_judge_share_one_loaded_model(smollm2_path, tmp_path):
    """One model per process: the service's in-process generator and its judge read the same
    loaded SmolLM2 (one shared backend, two users), the candidates are drawn together with their
    own finish reasons, and the model is freed when both are done."""
    from pluralign.prediction.judges.llamacpp import _SHARED
    from test_service_inprocess import service

    settings = {"model": str(smollm2_path), "n_ctx": 2048, "threads": 1}
    generator = {"candidates": 3, "generator_max_tokens": 24}
    with service(tmp_path, method="spm-zeroshot", settings=settings, generator=generator) as client:
        res = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": TARGET}})
        assert res.status_code == 200, res.text
        assert len(_SHARED) == 1 and next(iter(_SHARED.values()))._users == 2
        assert len(res.json()["pluralign"]["candidates"]) == 3
        assert res.json()["choices"][0]["finish_reason"] in ("stop", "length")
    assert _SHARED == {}


def test_the_local_generator_honours_the_judges_context_length(smollm2_path, tmp_path):
    from test_service_inprocess import service

    settings = {"model": str(smollm2_path), "n_ctx": 256, "threads": 1}
    long = " ".join(f"{k % 10}" for k in range(400))  # about 400 tokens: over 256, far under the old fixed 4,096
    with service(tmp_path, method="spm-zeroshot", settings=settings) as client:
        res = client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": long}], "pluralign": {"target": TARGET}},
        )
    assert res.status_code == 400 and "256" in res.json()["error"]["message"], res.text
