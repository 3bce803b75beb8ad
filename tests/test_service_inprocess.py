"""The service's routes in process (``create_app`` behind Starlette's test client, the httpx
client every request goes through), with the instant ``random`` method, the real user store,
and scripted upstreams where a fault must be forced. The fast tier's view of the service: a
request that fails stores nothing, a forgotten user stays forgotten, every door has the same
bounds, no key is shown, one key never reaches another's users."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from pluralign.people.profile import ChoiceRecord
from support import PAIR

PAIR_CHOICE = {"id": "1", **PAIR, "chosen": 0}
QA = {"question": PAIR["question"], "responses": PAIR["responses"]}
ASK = [{"role": "user", "content": "My neighbour asks me to water her plants. What do I say?"}]


@contextmanager
def service(
    tmp_path: Path,
    keys: dict[str, str] | None = None,
    generator: dict[str, Any] | None = None,
    method: str = "random",
    settings: dict[str, Any] | None = None,
    **limits: Any,
) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from pluralign.prediction.generators import GeneratorOptions
    from pluralign.server.app import create_app
    from pluralign.server.config import ServerConfig, ServiceOptions
    from pluralign.settings import make_settings

    config = ServerConfig(
        method=method,
        settings=make_settings({**({"cache": False} if method != "random" else {}), **(settings or {})}),
        limits=ServiceOptions(db=tmp_path / "users.sqlite", **limits),
        keys=keys or {},
        generator=GeneratorOptions(**(generator or {})),
    )
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client


def _store(client: Any) -> Any:
    return client.app.state.pluralign.users


def _feedback(client: Any, user: str, chosen: int = 0, **extra: Any) -> Any:
    return client.post("/v1/feedback", json={**PAIR, "user": user, "chosen": chosen, **extra})


# ---- 1. a request that fails stores nothing; a forgotten user stays forgotten ---------------


@pytest.fixture
def gated_fit(monkeypatch: pytest.MonkeyPatch) -> dict[str, threading.Event]:
    """The next profile fit waits until released: forces the race the hostile sweep found."""
    from pluralign.server.routes import feedback as route

    real = route.fit_profile
    gate = {"entered": threading.Event(), "release": threading.Event(), "armed": threading.Event()}

    def fit(*args: Any, **kw: Any) -> Any:
        if gate["armed"].is_set():
            gate["armed"].clear()
            gate["entered"].set()
            gate["release"].wait(30)
        return real(*args, **kw)

    monkeypatch.setattr(route, "fit_profile", fit)
    return gate


@pytest.mark.parametrize("existing", [True, False])
def test_a_refit_never_brings_back_a_forgotten_user(tmp_path: Path, gated_fit, existing: bool):
    """Forgotten while its feedback is being fitted: a user with a history, and a user whose
    first feedback it is (nothing stored yet to forget, the name forgotten all the same)."""
    with service(tmp_path) as client:
        if existing:
            assert _feedback(client, "victim").status_code == 200
        gated_fit["armed"].set()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_feedback, client, "victim", 1)
            assert gated_fit["entered"].wait(30)
            gone = client.delete("/v1/users/victim").json()
            gated_fit["release"].set()
            late = pending.result(60)
        assert gone["forgotten"] is existing and (gone["rows_removed"] >= 2) is existing
        assert late.status_code == 409 and "forgotten" in late.json()["detail"]
        assert client.get("/v1/users/victim/profile").status_code == 404
        assert _store(client).history("default", "victim") == []


BAD_FEEDBACK = [
    ({"predictions": [{"bogus": 0.5}, {"bogus": 0.1}]}, "unknown attribute"),
    ({"predictions": [{"verbosity": 0.5}, {"verbosity": 0.1}]}, "attributes"),
    ({"predictions": [{"care": 0.5}, {"authority": 0.1}]}, "other attributes"),
    ({"attributes": ["care", "care"]}, "named twice"),
    ({"predictions": [{"care": 1.5, "authority": 0.1}, {"care": 0.1, "authority": 0.1}]}, "outside [0, 1]"),
    ({"predictions": [{"care": 0.5, "authority": 0.1}]}, "1 predictions for 2 responses"),
    ({"attributes": ["care", "authority", "fairness", "liberty", "loyalty", "sanctity", "helpfulness"]}, "profiles"),
    ({"attributes": ["care", "authority", "fairness"]}, "predictions lack fairness"),
    ({"atributes": ["care"]}, "atributes: unknown field"),  # once dropped: the default attributes fitted
]


@pytest.mark.parametrize(("change", "needle"), BAD_FEEDBACK, ids=[n for _, n in BAD_FEEDBACK])
def test_a_feedback_that_fails_stores_nothing(tmp_path: Path, change: dict, needle: str):
    with service(tmp_path) as client:
        first = _feedback(client, "ann")
        assert first.status_code == 200, first.text
        before = client.get("/v1/users/ann/profile").json()
        res = _feedback(client, "ann", 1, **change)
        assert res.status_code == 422 and needle in res.json()["detail"], res.text
        assert len(_store(client).history("default", "ann")) == 1
        assert client.get("/v1/users/ann/profile").json() == before
        after = _feedback(client, "ann", 1)  # and the user goes on as before
        assert after.status_code == 200 and after.json()["n_choices"] == 2, after.text


@pytest.mark.parametrize(
    "raw",
    [
        '{"user": "ann", "question": "q", "responses": ["a", "b"], "chosen": 0, '
        '"predictions": [{"care": 0.1, "care": 0.9}, {"care": 0.2}]}',
        '{"user": "ann", "question": "q", "responses": ["a", "b"], "chosen": 0, '
        '"predictions": [{"care": NaN}, {"care": 0.2}]}',
        '{"user": "ann", "user": "bob", "question": "q", "responses": ["a", "b"], "chosen": 0}',
        '{"user": "\\ud800", "question": "q", "responses": ["a", "b"], "chosen": 0}',
    ],
    ids=["duplicated-key", "nan", "duplicated-user", "lone-surrogate"],
)
def test_a_body_that_json_cannot_say_plainly_is_refused_before_anything(tmp_path: Path, raw: str):
    with service(tmp_path) as client:
        res = client.post("/v1/feedback", content=raw, headers={"content-type": "application/json"})
        assert res.status_code == 422 and "body" in res.json()["detail"], res.text
        assert _store(client).users("default") == []


def test_a_feedback_past_its_deadline_stores_nothing(tmp_path: Path, gated_fit):
    with service(tmp_path, profile_timeout=0.5) as client:
        gated_fit["armed"].set()
        res = _feedback(client, "ann")
        gated_fit["release"].set()
        assert res.status_code == 504, res.text
        time.sleep(0.5)  # the abandoned fit ends; nothing may land after the answer either
        assert _store(client).users("default") == []


def test_feedback_on_one_completion_is_idempotent(tmp_path: Path):
    with service(tmp_path) as client:
        record = ChoiceRecord(id="chatcmpl-x", question="q", responses=["a", "b"], predictions=PAIR["predictions"])
        _store(client).add_completion("default", "chatcmpl-x", "ann", record)
        body = {"user": "ann", "completion_id": "chatcmpl-x", "chosen": 0}
        answers = [client.post("/v1/feedback", json=body).json() for _ in range(3)]
        assert [a["n_choices"] for a in answers] == [1, 1, 1] and [a["unchanged"] for a in answers] == [
            False,
            True,
            True,
        ]
        changed = client.post("/v1/feedback", json={**body, "chosen": 1}).json()
        assert changed["n_choices"] == 1 and not changed["unchanged"]
        assert [r.chosen for r in _store(client).history("default", "ann")] == [1]
        stolen = client.post("/v1/feedback", json={**body, "user": "bob"})
        assert stolen.status_code == 422 and "another user" in stolen.json()["detail"]


def test_a_retried_body_feedback_with_an_idempotency_key_is_stored_once(tmp_path: Path):
    """A client that lost the answer and sends the same feedback again under its Idempotency-Key
    stores the choice once; another answer under the key replaces it; the key cannot be reused for
    another question, a completion's feedback, or be anything but a short printable ASCII line."""
    with service(tmp_path) as client:
        body, key = {**PAIR, "user": "ann", "chosen": 0}, {"Idempotency-Key": "retry-7f3a"}
        answers = [client.post("/v1/feedback", json=body, headers=key).json() for _ in range(3)]
        assert [(a["n_choices"], a["unchanged"]) for a in answers] == [(1, False), (1, True), (1, True)]
        assert client.post("/v1/feedback", json={**body, "chosen": 1}, headers=key).json()["n_choices"] == 1
        assert [r.chosen for r in _store(client).history("default", "ann")] == [1]
        other = {**body, "question": "Another question?"}
        refused = [
            client.post("/v1/feedback", json=other, headers=key),
            client.post("/v1/feedback", json={**body, "responses": ["x", "y"]}, headers=key),
            client.post("/v1/feedback", json={**body, "predictions": PAIR["predictions"][::-1]}, headers=key),
            client.post("/v1/feedback", json={"user": "ann", "completion_id": "c-1", "chosen": 0}, headers=key),
        ]
        for bad in ("", "x" * 256, "caf\u00e9", "tab\tkey"):
            raw = json.dumps(body).encode()
            refused.append(
                client.post(
                    "/v1/feedback",
                    content=raw,
                    headers=[(b"content-type", b"application/json"), (b"idempotency-key", bad.encode("latin-1"))],
                )
            )
        for res in refused:
            assert res.status_code == 422 and "Idempotency-Key" in res.text and "\n" not in res.text, res.text
        assert [r.chosen for r in _store(client).history("default", "ann")] == [1]
        assert client.post("/v1/feedback", json=other, headers={"Idempotency-Key": "retry-8"}).json()["n_choices"] == 2
        assert client.post("/v1/feedback", json=body).json()["n_choices"] == 3  # no key: a new choice each time
        assert client.post("/v1/feedback", json={**body, "user": "bob"}, headers=key).json()["n_choices"] == 1


def test_feedback_from_many_users_at_once_loses_nothing(tmp_path: Path):
    """120 posts from 12 users, 16 at a time (a user's posts arriving together): every post is
    answered 200, each history holds its 10 choices and each profile is the fit of that history."""
    from pluralign.choice.attributes import DEFAULT_REGISTRY
    from pluralign.people.profile import fit_profile

    users = [f"user {k} ✓" for k in range(12)]
    with service(tmp_path) as client:
        jobs = [(u, k) for u in users for k in range(10)]
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda job: _feedback(client, job[0], users.index(job[0]) % 2).status_code, jobs))
        assert statuses == [200] * len(jobs)
        for i, user in enumerate(users):
            history = _store(client).history("default", user)
            assert len(history) == 10 and {r.chosen for r in history} == {i % 2}
            shown = client.get(f"/v1/users/{quote(user, safe='')}/profile").json()
            expected = fit_profile(DEFAULT_REGISTRY.require(["care", "authority"]), history)
            assert shown["n_choices"] == 10 and shown["profile"]["target"] == expected.target


NAMES = ["team/ann", "a%b", "x y", "..", "é ü", "?q=1", "#frag", "/lead", "trail/", "ann/profile", "a\\b", "💡"]


@pytest.mark.parametrize("name", NAMES)
def test_every_name_feedback_accepts_can_be_read_and_forgotten(tmp_path: Path, name: str):
    with service(tmp_path) as client:
        assert _feedback(client, name).status_code == 200
        path = quote(name, safe="").replace(".", "%2E")  # a client would fold /./ and /../ away
        shown = client.get(f"/v1/users/{path}/profile")
        assert shown.status_code == 200 and shown.json()["user"] == name, shown.text
        gone = client.delete(f"/v1/users/{path}")
        assert gone.status_code == 200 and gone.json()["forgotten"] is True, gone.text
        assert client.get(f"/v1/users/{path}/profile").status_code == 404
        assert _store(client).users("default") == []


# ---- 2. every door has the same bounds -------------------------------------------------------


def test_a_long_history_is_fitted_on_its_latest_choices_within_the_work_limit(tmp_path: Path):
    # care and authority: 8 levels each (7 + absent) make 63 candidate profiles; 2 responses a choice
    with service(tmp_path, max_profile_work=63 * 2 * 5) as client:
        for k in range(8):
            res = _feedback(client, "ann", k % 2)
            assert res.status_code == 200, res.text
        assert res.json()["n_choices"] == 8 and res.json()["profile"]["n_choices"] == 5
        assert client.get("/v1/users/ann/profile").json()["n_choices"] == 5


def test_a_list_of_attributes_with_one_named_twice_is_refused_everywhere(tmp_path: Path):
    with service(tmp_path) as client:
        body = {"question": "q", "responses": ["a", "b"], "attributes": ["verbosity"] * 20}
        res = client.post("/v1/predict", json=body)
        assert res.status_code == 422 and "named twice" in res.json()["detail"], res.text
        fit = {"choices": [{"id": "a", "question": "q", "responses": ["a", "b"], "chosen": 0,
                            "predictions": [{"care": 1}, {"care": 0}]}], "attributes": ["care", "care"]}  # fmt: skip
        res = client.post("/v1/profile/fit", json=fit)
        assert res.status_code == 422 and "named twice" in res.json()["detail"], res.text


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/rerank", "/v1/feedback", "/v1/choose", "/v1/profile/fit", "/v1/profiles"]
)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data", None],
)
def test_every_post_needs_a_json_content_type(tmp_path: Path, path: str, content_type: str | None):
    body = json.dumps({**PAIR, "user": "ann", "chosen": 0, "messages": ASK, "query": "q", "documents": ["a", "b"],
                       "target": {"care": 1}, "name": "p", "values": {"care": 1}})  # fmt: skip
    headers = {"origin": "https://evil.example"} | ({"content-type": content_type} if content_type else {})
    with service(tmp_path) as client:
        res = client.post(path, content=body, headers=headers)
        assert res.status_code == 415 and "application/json" in res.text, res.text
        assert _store(client).users("default") == []


def test_a_full_queue_refuses_a_chat_before_any_candidate_is_drawn(tmp_path: Path, scripted):
    upstream, script = scripted([("slow", 2.0, "A candidate.")])
    generator = {"generator_base_url": f"{upstream}/v1", "candidates": 2}
    with service(tmp_path, generator=generator, max_queue=1) as client:
        body = {"messages": ASK, "pluralign": {"target": {"care": 1}}}
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda _: client.post("/v1/chat/completions", json=body), range(12)))
    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    assert len(ok) + len(refused) == 12 and len(refused) >= 6, [(a.status_code, a.text) for a in answers]
    assert all(a.headers.get("retry-after", "").isdigit() for a in refused)
    # each answered chat asked the generator twice (n=2, then one more); the refused ones never
    assert script.hits == 2 * len(ok)


# ---- 3. no key in any output -----------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 500])
def test_a_generator_that_echoes_its_key_never_shows_it(tmp_path: Path, scripted, status: int):
    secret = "tok-GENSECRET-987654"
    os.environ["PL_TEST_GENKEY"] = secret
    upstream, _ = scripted([("echo", status)])
    generator = {"generator_base_url": f"{upstream}/v1", "generator_api_key_env": "PL_TEST_GENKEY"}
    with service(tmp_path, generator=generator) as client:
        res = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": {"care": 1}}})
    assert res.status_code == 502 and "the generator" in res.text, res.text
    assert secret not in res.text and "GENSECRET" not in res.text


def test_a_judge_that_echoes_its_key_never_shows_it(tmp_path: Path, scripted):
    secret = "judge-key-ABCDEF-123"
    os.environ["PL_TEST_JUDGEKEY"] = secret
    upstream, _ = scripted([("echo", 400)])
    settings = {"backend": "openai", "base_urls": [f"{upstream}/v1"], "model": "m", "max_retries": 0, "samples": 1,
                "judge_api_key_env": "PL_TEST_JUDGEKEY"}  # fmt: skip
    with service(tmp_path, method="spm-zeroshot", settings=settings) as client:
        for path, body in [
            ("/v1/choose", {"question": "q", "responses": ["a", "b"], "target": {"care": 1}}),
            ("/v1/predict", {"question": "q", "responses": ["a", "b"], "attributes": ["care"]}),
            ("/v1/rerank", {"query": "q", "documents": ["a", "b"], "target": {"care": 1}}),
            (
                "/v1/feedback",
                {"user": "ann", "question": "q", "responses": ["a", "b"], "chosen": 0, "attributes": ["care"]},
            ),
        ]:
            res = client.post(path, json=body)
            assert res.status_code == 502 and secret not in res.text and "ABCDEF" not in res.text, (path, res.text)


def test_a_judge_that_fails_with_500_is_a_bad_gateway(tmp_path: Path, scripted):
    upstream, _ = scripted([("raw", 500, {"content-type": "application/json"}, b'{"error": "boom"}')])
    settings = {"backend": "openai", "base_urls": [f"{upstream}/v1"], "model": "m", "max_retries": 1, "backoff": 0.01}
    with service(tmp_path, method="spm-zeroshot", settings=settings) as client:
        res = client.post("/v1/choose", json={"question": "q", "responses": ["a", "b"], "target": {"care": 1}})
    assert res.status_code == 502 and "answered 500" in res.json()["detail"], res.text


# ---- 5. one-line errors with the right status ---------------------------------------------


def test_a_generator_that_writes_too_much_is_its_fault_not_the_clients(tmp_path: Path, scripted):
    upstream, _ = scripted([("ok", "x" * 5_000_000)])
    with service(tmp_path, generator={"generator_base_url": f"{upstream}/v1"}, max_body_bytes=10_000_000) as client:
        res = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": {"care": 1}}})
    assert res.status_code == 502 and "generator wrote a candidate of 5000000 characters" in res.text, res.text[:300]


def test_finish_reason_is_the_chosen_candidates_own(tmp_path: Path, scripted):
    payload = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Cut off mid"}, "finish_reason": "length"},
            {"index": 1, "message": {"role": "assistant", "content": "Cut off too"}, "finish_reason": "length"},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    upstream, _ = scripted([("payload", payload)])
    with service(tmp_path, generator={"generator_base_url": f"{upstream}/v1", "candidates": 2}) as client:
        res = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": {"care": 1}}})
        assert res.status_code == 200 and res.json()["choices"][0]["finish_reason"] == "length", res.text
        streamed = client.post(
            "/v1/chat/completions", json={"messages": ASK, "stream": True, "pluralign": {"target": {"care": 1}}}
        )
        chunks = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: {")]
        reasons = [c["finish_reason"] for chunk in chunks for c in chunk["choices"] if c.get("finish_reason")]
        assert reasons == ["length"], reasons


def test_a_chat_asks_the_judge_for_reasonings_within_the_steering_cap(tmp_path: Path, scripted):
    """--steer-reasoning-chars (160 by default) bounds each reasoning in the schema the judge gets
    for a chat's candidates; /v1/choose keeps the method's own 512."""
    two = {
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Gladly, I will help."}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": "Ask someone else."}, "finish_reason": "stop"},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4},
    }
    generator, _ = scripted([("payload", two)])
    answer = json.dumps({"A": {"reasoning": "Kind.", "score": 90}, "B": {"reasoning": "Cold.", "score": 10}})
    judge, script = scripted([("ok", answer)])
    settings = {"backend": "openai", "base_urls": [judge], "model": "m", "samples": 1, "max_retries": 0}

    def caps() -> set[int]:
        out = set()
        for body in script.bodies:
            schema = body["response_format"]["json_schema"]["schema"]
            out |= {item["properties"]["reasoning"]["maxLength"] for item in schema["properties"].values()}
        script.bodies.clear()
        return out

    for extra, cap in (({}, 160), ({"steer_reasoning_chars": 60}, 60)):
        drawn = {"generator_base_url": generator, "candidates": 2}
        with service(tmp_path, method="spm-zeroshot", settings=settings, generator=drawn, **extra) as client:
            chat = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": {"care": 1}}})
            assert chat.status_code == 200, chat.text
            assert caps() == {cap}
            assert client.post("/v1/choose", json={**QA, "target": {"care": 1}}).status_code == 200
            assert caps() == {512}


def test_rerank_reads_the_rank_fields_and_refuses_what_it_cannot_honour(tmp_path: Path, scripted):
    """``rank_fields``, ``max_tokens_per_doc`` and ``max_chunks_per_doc`` were accepted and dropped:
    the judge read ``text`` whatever was asked. Now the named fields are what it reads, a result's
    document is the object as sent, and what cannot be honoured is a 400 before the judge is asked."""
    answer = json.dumps({"A": {"reasoning": "Kind.", "score": 90}, "B": {"reasoning": "Cold.", "score": 10}})
    judge, script = scripted([("ok", answer), ("ok", answer)])
    settings = {"backend": "openai", "base_urls": [judge], "model": "m", "samples": 1, "max_retries": 0}
    docs = [{"text": "Help them.", "title": "Kind", "id": 7}, {"text": "Follow the rules.", "title": "Strict", "id": 8}]
    ask = {"query": "How should I answer?", "documents": docs, "target": {"care": 1}}

    def judged() -> str:
        out = "\n".join(m["content"] for body in script.bodies for m in body["messages"])
        script.bodies.clear()
        return out

    with service(tmp_path, method="spm-zeroshot", settings=settings) as client:
        res = client.post("/v1/rerank", json={**ask, "rank_fields": ["title", "text"]})
        assert res.status_code == 200, res.text
        assert [r["document"] for r in res.json()["results"]] == docs  # as sent, every field
        prompt = judged()
        for read in ("title: Kind\ntext: Help them.", "title: Strict\ntext: Follow the rules."):
            assert json.dumps(read) in prompt, prompt  # responses are quoted as JSON strings
        assert client.post("/v1/rerank", json=ask).status_code == 200
        prompt = judged()
        assert "Help them." in prompt and "title: Kind" not in prompt
        for extra, param in [
            ({"max_tokens_per_doc": 512}, "max_tokens_per_doc"),
            ({"max_chunks_per_doc": 2}, "max_chunks_per_doc"),
            ({"rank_fields": ["text", "text"]}, "rank_fields"),
            ({"rank_fields": ["author"]}, "documents[0]"),
            ({"rank_fields": ["title"], "documents": ["a", "b"]}, "documents[0]"),
            ({"rank_fields": ["id"]}, "documents[0]"),  # a number is not text
        ]:
            res = client.post("/v1/rerank", json={**ask, **extra})
            error = res.json()["error"]
            assert res.status_code == 400 and error["param"] == param, (extra, res.text)
        assert script.bodies == []  # refused before the judge was asked


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "\ud800"}]}, "lone surrogate"),
        (
            "/v1/rerank",
            {"query": "q", "documents": ["a", "b"], "target": {"care": 1}, "pluralign": {"target": {"care": 0}}},
            "not both",
        ),
        ("/v1/choose", {"question": "q", "responses": ["a", "b"], "target": {"care": 1}, "seed": -1}, "seed"),
        ("/v1/choose", {"question": "q", "responses": ["a", "b"], "target": {"care": 1}, "seed": 2**70}, "seed"),
        ("/v1/chat/completions", {"messages": ASK, "seed": -3, "pluralign": {"target": {"care": 1}}}, "seed"),
        ("/v1/profiles", {"name": "p", "values": {"care": "0.5"}}, "number"),
        # a misspelt field: once dropped in silence, its default used
        ("/v1/choose", {"question": "q", "responses": ["a", "b"], "target": {"care": 1}, "sample": 5}, "sample"),
        ("/v1/predict", {"question": "q", "responses": ["a", "b"], "attributes": ["care"], "seeds": 1}, "seeds"),
        ("/v1/profile/fit", {"choices": [PAIR_CHOICE], "atributes": ["care"]}, "atributes"),
        ("/v1/profile/next", {"choices": [], "pol": [PAIR_CHOICE]}, "pol"),
        ("/v1/profiles", {"name": "p", "values": {"care": 0.5}, "wieghts": {"care": 2}}, "wieghts"),
        ("/v1/choose", {**QA, "target": [{"values": {"care": 1}, "wieght": 3}, {"care": 0}]}, "'wieght'"),
        (
            "/v1/chat/completions",
            {"messages": ASK, "pluralign": {"target": {"values": {}, "wieghts": {}}}},
            "'wieghts'",
        ),
        (
            "/v1/rerank",
            {"query": "q", "documents": ["a", "b"], "target": {"group": [{"care": 1}], "nam": "x"}},
            "'nam'",
        ),
        # an empty stop sequence: llama.cpp then answers "" for every candidate
        ("/v1/chat/completions", {"messages": ASK, "stop": "", "pluralign": {"target": {"care": 1}}}, "stop: an empty"),
        ("/v1/chat/completions", {"messages": ASK, "stop": ["\n", ""], "pluralign": {"target": {"care": 1}}}, "stop: "),
        # a participant's name: once accepted and dropped before the generator
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Hi", "name": "ann"}], "pluralign": {"target": {"care": 1}}},
            '"param":"messages[0].name"',
        ),
        # an attribute the registry does not know, named by the field it came in
        ("/v1/predict", {**QA, "attributes": ["care", "CARE"]}, "attributes: unknown attribute 'CARE'"),
        ("/v1/feedback", {**PAIR, "chosen": 0, "user": "u", "attributes": [""]}, "attributes: unknown attribute ''"),
    ],
    ids=" ".join(
        [
            "surrogate two-targets negative-seed huge-seed chat-seed string-number choose-unknown predict-unknown",
            "fit-unknown next-unknown profile-unknown group-member-unknown chat-target-unknown rerank-group-unknown",
            "empty-stop empty-stop-in-list message-name predict-attribute feedback-attribute",
        ]
    ).split(),
)
def test_bad_input_is_a_4xx_that_names_it(tmp_path: Path, path: str, body: dict, needle: str):
    (tmp_path / "profiles").mkdir()
    with service(tmp_path, profiles_dir=tmp_path / "profiles") as client:
        raw = json.dumps(body)  # ensure_ascii: a lone surrogate travels as \ud800, as JSON allows
        res = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert res.status_code in (400, 422) and needle in res.text, res.text
    assert res.status_code == 400 or ("body." not in res.text and len(res.json()["detail"].splitlines()) == 1)
    assert list((tmp_path / "profiles").iterdir()) == []


@pytest.mark.parametrize(
    ("method", "path", "needle"),
    [
        ("GET", "/v1/runs/demo?ofset=5", "query.ofset: unknown field"),  # once showed the first page
        ("GET", "/v1/runs/demo?offset=-1", "offset"),  # once clamped to 0 in silence
        ("GET", "/v1/runs/demo?limit=1000", "limit"),  # once clamped to 100 in silence
        ("GET", "/v1/attributes?atributes=care", "atributes"),
        ("GET", "/healthz?verbose=1", "verbose"),
        ("GET", "/v1/users/ann/profile?namespace=other", "namespace"),
        ("POST", "/v1/choose?samples=5", "samples"),  # a POST's query is read by nobody either
        ("POST", "/v1/feedback?user=bob", "user"),
        ("DELETE", "/v1/users/ann?force=1", "force"),
        ("GET", "/v1/runs/demo?limit=5&limit=100", "query.limit: given twice"),  # once the last, in silence
    ],
    ids="run-offset negative-offset big-limit attributes healthz profile choose feedback forget twice".split(),
)
def test_a_query_key_no_route_reads_is_refused_before_any_work(tmp_path: Path, method: str, path: str, needle: str):
    with service(tmp_path) as client:
        assert _feedback(client, "ann").status_code == 200
        before = _store(client).history("default", "ann")
        body = {"json": {**PAIR, "user": "ann", "chosen": 1, "target": {"care": 1}}} if method == "POST" else {}
        if path.startswith("/v1/choose"):
            body = {"json": {**QA, "target": {"care": 1}}}
        res = client.request(method, path, **body)
        assert res.status_code == 422 and needle in res.json()["detail"], res.text
        assert len(res.json()["detail"].splitlines()) == 1
        assert _store(client).history("default", "ann") == before  # nothing stored, nothing forgotten


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/v1/models?limit=5", "unsupported_parameter"),
        ("/v1/chat/completions?modle=x", "unsupported_parameter"),
        ("/v1/rerank?top=1", "unsupported_parameter"),
        ("/v1/chat/completions?metadata[c]=1&metadata[c]=2", "invalid_value"),
        ("/v1/rerank?query=x", "unsupported_parameter"),  # a key named as a body field is still a key
    ],
)
def test_an_unread_query_key_on_an_openai_route_is_openais_400(tmp_path: Path, path: str, code: str):
    key = path.split("?")[1].split("=")[0]
    with service(tmp_path) as client:
        if path.startswith("/v1/rerank"):
            res = client.post(path, json={"query": "q", "documents": ["a", "b"], "target": {"care": 1}})
        else:
            res = client.get(path)
    error = res.json()["error"]
    assert res.status_code == 400 and error["param"] == key and error["code"] == code, res.text


def test_the_query_keys_routes_read_still_pass(tmp_path: Path):
    """A cache-buster anywhere, the stored list's ``metadata[key]``, the page's tracking
    parameters, and a run page's own offset and limit."""
    with service(tmp_path, runs_dir=tmp_path) as client:
        assert client.get("/healthz?_=1733500000").status_code == 200
        listed = client.get("/v1/chat/completions?metadata[conversation]=c1&limit=5&order=desc&_=1")
        assert listed.status_code == 200 and listed.json()["data"] == [], listed.text
        assert client.get("/?utm_source=newsletter").status_code == 200
        assert client.get("/v1/runs/demo?offset=5&limit=100").status_code == 404  # no such run; the keys pass


@pytest.mark.parametrize("blank", ["", " ", "\n\t  ", "\u3000"])
def test_a_blank_question_is_refused_at_every_door_of_the_service(tmp_path: Path, blank: str):
    """Once ``"   "`` was judged (a question of nothing) while ``""`` was refused; and rerank's
    ``query`` is the same question."""
    with service(tmp_path) as client:
        assert _feedback(client, "ann").status_code == 200
        before = _store(client).history("default", "ann")
        chose = client.post("/v1/choose", json={"question": blank, "responses": ["a", "b"], "target": {"care": 1}})
        predicted = client.post(
            "/v1/predict", json={"question": blank, "responses": ["a", "b"], "attributes": ["care"]}
        )
        fed = _feedback(client, "ann", chosen=1, question=blank)
        ranked = client.post("/v1/rerank", json={"query": blank, "documents": ["a", "b"], "target": {"care": 1}})
        for res in (chose, predicted, fed):
            assert res.status_code == 422 and res.json()["detail"].startswith("question: is blank"), res.text
        error = ranked.json()["error"]
        assert ranked.status_code == 400 and error["param"] == "query" and "is blank" in error["message"], ranked.text
        assert _store(client).history("default", "ann") == before


@pytest.mark.parametrize(
    ("path", "body", "field", "needle"),
    [
        # a part no branch of ``content`` takes: the list's own problem, not the string branch's
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
            "'text'",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "a valid string or a valid list",
        ),
        ("/v1/chat/completions", {"messages": ASK, "stop": 5}, "stop", "a valid string or a valid list"),
        ("/v1/chat/completions", {"messages": ASK, "stop": ["a", 1]}, "stop[1]", "a valid string"),
        ("/v1/chat/completions", {"messages": ASK, "metadata": {"Topic": 1}}, "metadata.Topic", "a valid string"),
        ("/v1/rerank", {"query": "q", "documents": ["a", 5]}, "documents[1]", "a valid string or a valid dict"),
        ("/v1/rerank", {"query": 5, "documents": ["a", "b"]}, "query", "a valid string"),  # once no field at all
        ("/v1/choose", {**QA, "target": 5}, "target", "a valid dictionary or a valid list"),
    ],
    ids="content-part content-number stop-number stop-item metadata-key document query choose-target".split(),
)
def test_a_value_that_fits_no_branch_is_one_problem_named_by_its_field(
    tmp_path: Path, path: str, body: dict, field: str, needle: str
):
    """A union's branch names (``str``, ``list[TextPart]``, ``Document``) are pydantic's, never the
    sender's: the message names the field as it was sent, in one line."""
    with service(tmp_path) as client:
        res = client.post(path, json=body)
    text = res.json()["error"]["message"] if res.status_code == 400 else res.json()["detail"]
    assert res.status_code in (400, 422) and text.startswith(f"{field}: ") and needle in text, res.text
    assert res.status_code == 422 or res.json()["error"]["param"] == field
    for branch in (".str", "list[", "Document", "dict[", "TextPart"):
        assert branch not in text


def test_relevance_counts_the_weights():
    from pluralign.api import ChooseResult
    from pluralign.server.openai.rerank import relevance

    result = ChooseResult(
        selected_index=0, selected_response="a", reasoning="", predictions=None, distances=[0.0, 0.1],
        target={"care": 1.0, "authority": 0.0}, weights={"care": 0.01, "authority": 0.01}, method="m",
    )  # fmt: skip
    # the farthest a response can be is sqrt(0.02), not sqrt(2): a distance of 0.1 is far, not near
    assert relevance(0.1, result) == pytest.approx(1 - 0.1 / 0.02**0.5)
    plain = result.model_copy(update={"weights": None})
    assert relevance(0.1, plain) == pytest.approx(1 - 0.1 / 2**0.5)


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One service for tests that only read (each refusal stores nothing)."""
    with service(tmp_path_factory.mktemp("shared")) as client:
        yield client


LONG = "x" * 50_000
Q = {"question": "q?", "responses": ["a", "b"]}


@pytest.mark.parametrize(
    ("route", "body", "ends"),
    [
        ("/v1/choose", {**Q, "target": {LONG: 1}}, "sanctity, verbosity)"),
        ("/v1/choose", {**Q, "target": {"care": 1}, LONG: 1}, ": unknown field"),
        ("/v1/predict", {**Q, "attributes": [LONG]}, "sanctity, verbosity)"),
        ("/v1/feedback", {**PAIR, "user": "u", "chosen": 0, "predictions": [{LONG: 1}, {LONG: 0}]}, ""),
        ("/v1/chat/completions", {"model": "m", LONG: 1, "messages": [{"role": "user", "content": "hi"}]}, ""),
        ("/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                  "pluralign": {"target": {LONG: 1}}}, "sanctity, verbosity)"),
        ("/v1/rerank", {"model": "m", "query": "q", "documents": ["a", "b"], LONG: 1}, ""),
        ("/v1/rerank", {"model": "m", "query": "q", "documents": [{"text": "a"}, {"text": "b"}],
                        "rank_fields": [LONG]}, ""),
    ],
)  # fmt: skip
def test_a_long_name_in_a_request_is_not_echoed_whole(shared_service: Any, route: str, body: dict, ends: str):
    """A refusal names what it refuses, and a name can be 50,000 characters: the message is cut in
    its middle (its start says what is wrong, its end what is known), ``param`` too."""
    from pluralign.support.errors import LINE_LIMIT

    res = shared_service.post(route, json=body)
    assert 400 <= res.status_code < 500, res.text
    assert len(res.text) < LINE_LIMIT + 400, len(res.text)
    error = res.json().get("error") or res.json()
    message = error.get("message") or error["detail"]
    assert "characters ...]" in message and message.endswith(ends if ends else message[-20:])
    assert len(error.get("param") or "") <= 200


# ---- 6. who may read whom --------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("X-API-Key", "key-one-1111"), ("X-API-Key", "key-two-2222")],  # two namespaces: which?
        [("X-API-Key", "key-one-1111"), ("x-api-key", "key-one-1111")],
        [("Authorization", "Bearer key-one-1111"), ("authorization", "Bearer key-two-2222")],
        [("X-API-Key", "key-one-1111"), ("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
        [("X-API-Key", "key-one-1111"), ("Content-Type", "application/json"), ("content-type", "text/plain")],
    ],
    ids="two-keys same-key-twice two-bearers two-idempotency-keys two-content-types".split(),
)
def test_a_header_pluralign_acts_on_given_twice_is_refused(tmp_path: Path, headers: list[tuple[str, str]]):
    """Which of two ``X-API-Key`` headers was read was the server's choice (the last), and two keys
    can name two namespaces: a 400 naming the header, before any work."""
    keys = {"one": "key-one-1111", "two": "key-two-2222"}
    with service(tmp_path, keys=keys) as client:
        body = json.dumps({**PAIR, "user": "ann", "chosen": 0})
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers = [*headers, ("content-type", "application/json")]
        res = client.post("/v1/feedback", content=body, headers=headers)
        twice = next(k.lower() for k, _ in headers if sum(n.lower() == k.lower() for n, _ in headers) > 1)
        assert res.status_code == 400 and f"the {twice} header is given twice" in res.text, res.text
        assert _store(client).history("one", "ann") == [] and _store(client).history("two", "ann") == []
        once = [h for i, h in enumerate(headers) if h[0].lower() not in [n.lower() for n, _ in headers[:i]]]
        assert client.post("/v1/feedback", content=body, headers=once).status_code == 200  # once, it passes


def test_one_key_never_reaches_another_keys_users(tmp_path: Path):
    keys = {"app1": "key-of-app-one-1111", "app2": "key-of-app-two-2222"}
    with service(tmp_path, keys=keys) as client:
        one, two = ({"X-API-Key": keys["app1"]}, {"Authorization": f"Bearer {keys['app2']}"})
        assert client.post("/v1/feedback", json={**PAIR, "user": "ann", "chosen": 0}, headers=one).status_code == 200
        assert client.get("/v1/users/ann/profile", headers=one).status_code == 200
        assert client.get("/v1/users/ann/profile", headers=two).status_code == 404
        assert client.delete("/v1/users/ann", headers=two).json()["forgotten"] is False
        steer = client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"], "user": "ann"}, headers=two)
        assert steer.status_code == 400 and "no profile" in steer.text and steer.json()["error"]["param"] == "user"
        record = ChoiceRecord(id="c-1", question="q", responses=["a", "b"], predictions=PAIR["predictions"])
        _store(client).add_completion("app1", "c-1", None, record)
        claim = client.post("/v1/feedback", json={"user": "eve", "completion_id": "c-1", "chosen": 0}, headers=two)
        assert claim.status_code == 422 and "no completion" in claim.text
        assert client.get("/v1/users/ann/profile").status_code == 401
        assert client.get("/v1/users/ann/profile", headers=one).status_code == 200  # still there


def test_the_generator_speaks_through_the_judges_client_and_retry_policy(tmp_path: Path, scripted):
    """A generator upstream that is busy once (503 with Retry-After) is asked again, as the judge's
    would be; one that answers something that is not a completion is a 502 that says so."""
    upstream, script = scripted([("raw", 503, {"retry-after": "0"}, b"busy"), ("ok", "An answer.")])
    with service(tmp_path, generator={"generator_base_url": f"{upstream}/v1", "candidates": 2}) as client:
        res = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": {"care": 1}}})
    assert res.status_code == 200, res.text
    assert script.hits >= 3  # the 503, then n=2 and the one candidate it lacked
    broken, _ = scripted([("raw", 200, {"content-type": "application/json"}, b'{"choices": "no"}')])
    with service(tmp_path / "b", generator={"generator_base_url": f"{broken}/v1"}) as client:
        res = client.post("/v1/chat/completions", json={"messages": ASK, "pluralign": {"target": {"care": 1}}})
    assert res.status_code == 502 and "not a chat completion" in res.text, res.text


@pytest.mark.parametrize(
    "schema",
    [{"type": "nonsense"}, {"properties": {"a": {"type": 5}}}, {"minLength": -1}, "not an object", [1, 2]],
)
def test_a_response_format_whose_schema_is_not_one_is_a_400_before_any_candidate(tmp_path: Path, scripted, schema):
    """A bad schema was found only when the candidates were checked against it (a 500 after the
    generator had been paid for): now admission refuses it, naming the parameter."""
    upstream, script = scripted([("ok", "A candidate.")])
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    with service(tmp_path, generator={"generator_base_url": upstream, "candidates": 2}) as client:
        res = client.post(
            "/v1/chat/completions", json={"messages": ASK, "response_format": fmt, "pluralign": {"target": {"care": 1}}}
        )
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert error["param"] == "response_format.json_schema", error
    assert "not a JSON schema" in error["message"] or "must be a JSON object" in error["message"], error
    assert script.hits == 0


def test_saved_profiles_belong_to_their_namespace(tmp_path: Path):
    """An application's key saves into, and reads before the operator's catalog, its own place:
    it can neither overwrite the catalog nor see or steer with another application's profiles,
    through /v1/profiles, /v1/models, pluralign.profile or model pluralign/NAME."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "shared.json").write_text('{"care": 1.0}')
    keys = {"default": "key-of-the-operator-0000", "app1": "key-of-app-one-1111", "app2": "key-of-app-two-2222"}
    admin, one, two = ({"X-API-Key": keys[n]} for n in ("default", "app1", "app2"))
    with service(tmp_path, keys=keys, profiles_dir=folder) as client:
        assert client.post("/v1/profiles", json={"name": "team", "values": {"care": 0.5}}, headers=admin).is_success
        for body in ({"name": "mine", "values": {"care": 0.2}}, {"name": "shared", "values": {"care": 0.0}}):
            assert client.post("/v1/profiles", json=body, headers=one).is_success

        def steered(headers: dict[str, str], **how: Any) -> Any:
            body = {"query": "q", "documents": ["a", "b"], **how}
            return client.post("/v1/rerank", json=body, headers=headers)

        def models(headers: dict[str, str]) -> list[str]:
            return [m["id"] for m in client.get("/v1/models", headers=headers).json()["data"]]

        def listed(headers: dict[str, str]) -> dict[str, Any]:
            return {p["name"]: p["values"] for p in client.get("/v1/profiles", headers=headers).json()}

        assert listed(one) == {"mine": {"care": 0.2}, "shared": {"care": 0.0}, "team": {"care": 0.5}}
        assert listed(two) == {"shared": {"care": 1.0}, "team": {"care": 0.5}}
        assert models(two) == ["pluralign", "pluralign/shared", "pluralign/team"]
        assert "pluralign/mine" in models(one)
        assert steered(one, model="pluralign/shared").json()["pluralign"]["target"] == {"care": 0.0}
        assert steered(two, model="pluralign/shared").json()["pluralign"]["target"] == {"care": 1.0}
        for how in ({"model": "pluralign/mine"}, {"pluralign": {"profile": "mine"}}):
            res = steered(two, **how)
            assert res.status_code == 400 and "no saved profile named 'mine'" in res.text, res.text
        assert steered(admin, model="pluralign/mine").status_code == 400  # the operator's key too: app1's own
    assert json.loads((folder / "shared.json").read_text()) == {"care": 1.0}  # the catalog is untouched
    assert sorted(p.name for p in (folder / "app1").iterdir()) == ["mine.json", "shared.json"]
    assert not (folder / "app2").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "ok\n", ".hidden", "x" * 65, "", "é", "app1/../../x"])
def test_a_saved_profile_name_is_a_label_never_a_path(tmp_path: Path, name: str):
    folder = tmp_path / "profiles"
    folder.mkdir()
    with service(tmp_path, keys={"app1": "key-of-app-one-1111"}, profiles_dir=folder) as client:
        headers = {"X-API-Key": "key-of-app-one-1111"}
        res = client.post("/v1/profiles", json={"name": name, "values": {"care": 1}}, headers=headers)
        assert res.status_code == 422 and "\n" not in res.json()["detail"], res.text
        steer = client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"], "model": f"pluralign/{name}"},
                            headers=headers)  # fmt: skip
        assert steer.status_code == 400, steer.text
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if "users" not in p.name) == [
        "profiles"
    ]


def test_links_in_the_profiles_folder_are_never_followed(tmp_path: Path):
    """A link planted as a namespace's place, or as a profile, is neither read nor written through;
    the error names the link without the server's path."""
    folder, outside = tmp_path / "profiles", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "secret.json").write_text('{"care": 0.25}')
    (folder / "app1").symlink_to(outside)
    (folder / "stolen.json").symlink_to(outside / "secret.json")
    (folder / "pipe.json").unlink(missing_ok=True)
    os.mkfifo(folder / "pipe.json")
    headers = {"X-API-Key": "key-of-app-one-1111"}
    with service(tmp_path, keys={"app1": headers["X-API-Key"]}, profiles_dir=folder) as client:
        saved = client.post("/v1/profiles", json={"name": "mine", "values": {"care": 1}}, headers=headers)
        assert saved.status_code == 422 and "link" in saved.text and str(tmp_path) not in saved.text, saved.text
        for name in ("stolen", "pipe"):
            res = client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"], "model": f"pluralign/{name}"},
                              headers=headers)  # fmt: skip
            assert res.status_code == 400 and str(tmp_path) not in res.text, res.text
            assert "0.25" not in res.text
        assert client.get("/v1/profiles", headers=headers).json() == []
        assert [m["id"] for m in client.get("/v1/models", headers=headers).json()["data"]] == ["pluralign"]
    assert sorted(p.name for p in outside.iterdir()) == ["secret.json"]
