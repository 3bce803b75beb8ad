"""What an operator sees (issue 40, item 3): /metrics in Prometheus' format, one request log
line per request with its id echoed in X-Request-Id, and /readyz, in process with the real user
store (the fast tier); the judge fault is a real closed port."""

from __future__ import annotations

import json
import logging
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_service_inprocess import PAIR, service

CHOOSE = {"question": "How should I answer?", "responses": ["Help them.", "Follow the rules."], "target": {"care": 1}}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_count_requests_by_route_template_and_status(tmp_path: Path):
    with service(tmp_path) as client:
        assert client.post("/v1/choose", json=CHOOSE).status_code == 200
        assert client.post("/v1/choose", json=CHOOSE).status_code == 200
        assert client.post("/v1/choose", json={**CHOOSE, "responses": []}).status_code == 422
        assert client.post("/v1/feedback", json={**PAIR, "user": "ann-the-user", "chosen": 0}).status_code == 200
        assert client.get("/v1/users/ann-the-user/profile").status_code == 200
        assert client.get("/v1/no-such-route?sig=QSECRET7").status_code == 404
        res = client.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    got = samples(res.text)
    assert got[("pluralign_requests_total", (("route", "/v1/choose"), ("status", "200")))] == 2
    assert got[("pluralign_requests_total", (("route", "/v1/choose"), ("status", "422")))] == 1
    assert got[("pluralign_requests_total", (("route", "unmatched"), ("status", "404")))] == 1
    assert got[("pluralign_request_seconds_count", (("route", "/v1/choose"),))] == 3
    # a user's name and what a client put in a URL never become a label
    assert "ann-the-user" not in res.text and "QSECRET7" not in res.text and "no-such-route" not in res.text
    assert any(k[0] == "pluralign_requests_total" and ("route", "/v1/users/{user:path}/profile") in k[1] for k in got)
    # the two decisions and the fit went through the queues, timed by stage
    assert got[("pluralign_stage_seconds_count", (("stage", "judging"),))] >= 2
    assert got[("pluralign_stage_seconds_count", (("stage", "profile"),))] >= 1
    assert got[("pluralign_queue_depth", ())] == 0


def test_judge_calls_and_tokens_are_counted_by_who_answered(tmp_path: Path, scripted):
    answer = json.dumps({"A": {"reasoning": "Kind.", "score": 90}, "B": {"reasoning": "Cold.", "score": 10}})
    upstream, script = scripted([("ok", answer)])
    settings = {"backend": "openai", "base_urls": [upstream], "model": "m", "samples": 1, "max_retries": 0,
                "cache": True, "cache_path": tmp_path / "cache.sqlite"}  # fmt: skip
    with service(tmp_path, method="spm-zeroshot", settings=settings) as client:
        for _ in range(2):  # the second is answered by the judgement cache
            assert client.post("/v1/choose", json=CHOOSE).status_code == 200
        got = samples(client.get("/metrics").text)
    assert script.hits == 1
    assert got[("pluralign_judge_calls_total", (("answered_by", "model"),))] == 1
    assert got[("pluralign_judge_calls_total", (("answered_by", "cache"),))] == 1
    assert got[("pluralign_tokens_total", (("kind", "prompt"), ("stage", "judging")))] == 11  # the upstream's usage
    assert got[("pluralign_tokens_total", (("kind", "completion"), ("stage", "judging")))] == 7


def test_every_answer_carries_a_request_id_and_a_sane_one_is_echoed(tmp_path: Path):
    with service(tmp_path, keys={"default": "k-123"}, max_body_bytes=2000) as client:
        auth = {"Authorization": "Bearer k-123"}
        made = client.post("/v1/choose", json=CHOOSE, headers=auth)
        echoed = client.post("/v1/choose", json=CHOOSE, headers={**auth, "X-Request-Id": "trace-42.a:b"})
        replaced = client.post("/v1/choose", json=CHOOSE, headers={**auth, "X-Request-Id": "x" * 200})
        spaced = client.get("/healthz", headers={**auth, "X-Request-Id": "a b"})
        refused = [
            client.post("/v1/choose", json=CHOOSE),  # no key: 401 from admission
            client.post("/v1/choose", json={**CHOOSE, "question": "q" * 5000}, headers=auth),  # 413
            client.get("/v1/nothing", headers=auth),  # 404
        ]
    assert made.status_code == 200 and len(made.headers["x-request-id"]) == 32
    assert echoed.headers["x-request-id"] == "trace-42.a:b"
    assert replaced.headers["x-request-id"] != "x" * 200 and len(replaced.headers["x-request-id"]) == 32
    assert spaced.headers["x-request-id"] != "a b"
    assert [r.status_code for r in refused] == [401, 413, 404]
    assert all(len(r.headers["x-request-id"]) == 32 for r in refused)


def test_one_log_line_per_request_without_keys_queries_or_texts(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    key = "svc-KEY-5551212"
    secret_text = "MY-PRIVATE-QUESTION-TEXT"
    with caplog.at_level(logging.INFO, logger="pluralign.requests"), service(tmp_path, keys={"default": key}) as client:
        auth = {"Authorization": f"Bearer {key}", "X-Request-Id": "req-1"}
        client.post("/v1/choose", json={**CHOOSE, "question": secret_text}, headers=auth)
        client.post("/v1/feedback", json={**PAIR, "user": "bo", "chosen": 1}, headers={"X-API-Key": key})
        client.get("/v1/users/cy/profile", headers={"X-API-Key": key})
        client.get("/healthz", headers={"X-API-Key": "wrong-key-77"})
        client.get("/healthz", headers={"X-API-Key": key, "X-Request-Id": key})  # a key sent as the id
        client.post("/v1/choose?api_key=QUERYSECRET", json=CHOOSE, headers=auth)  # refused: no route reads it
    lines = [r.getMessage() for r in caplog.records if r.name == "pluralign.requests"]
    records = [json.loads(line) for line in lines]
    assert len(records) == 6 and records[4]["id"] != key and records[5]["status"] == 422
    first = records[0]
    assert first["id"] == "req-1" and first["route"] == "/v1/choose" and first["status"] == 200
    assert first["method"] == "POST" and first["seconds"] >= 0 and first["namespace"] == "default"
    assert records[1]["user"] == "bo" and records[2]["user"] == "cy"
    assert records[2]["route"] == "/v1/users/{user:path}/profile"
    assert records[3]["status"] == 401 and records[3]["route"] == "unmatched"
    text = "\n".join(lines)
    for secret in (key, "QUERYSECRET", "api_key", secret_text, "wrong-key-77", "Help them"):
        assert secret not in text


def test_readyz_is_ready_when_the_database_and_judge_answer(tmp_path: Path):
    with service(tmp_path) as client:
        res = client.get("/readyz")
    assert res.status_code == 200, res.text
    checks = {"method": "ok", "database": "ok", "judge": "ok", "generator": "ok"}
    assert res.json() == {"status": "ready", "checks": checks}


def test_readyz_says_503_when_the_generator_server_is_unreachable(tmp_path: Path):
    generator = {"generator_base_url": f"http://127.0.0.1:{closed_port()}/v1"}
    with service(tmp_path, generator=generator) as client:
        res = client.get("/readyz")
    assert res.status_code == 503 and res.json()["checks"]["judge"] == "ok"
    assert "unreachable" in res.json()["checks"]["generator"]


def test_readyz_says_503_when_the_judge_server_is_unreachable(tmp_path: Path):
    url = f"http://user:pw-SECRET-9@127.0.0.1:{closed_port()}/v1"
    settings = {"backend": "openai", "base_urls": [url], "model": "m", "samples": 1, "max_retries": 0}
    with service(tmp_path, method="spm-zeroshot", settings=settings) as client:
        res = client.get("/readyz")
        health = client.get("/healthz")
    assert res.status_code == 503 and res.headers["retry-after"] == "5"
    body: dict[str, Any] = res.json()
    assert body["status"] == "not ready" and body["checks"]["database"] == "ok"
    assert "unreachable" in body["checks"]["judge"] and "pw-SECRET-9" not in res.text
    assert health.status_code == 200  # /healthz says only that the process is up


def test_readyz_says_503_when_the_database_cannot_be_read(tmp_path: Path):
    with service(tmp_path) as client:
        db = tmp_path / "users.sqlite"
        db.unlink()
        for extra in tmp_path.glob("users.sqlite-*"):
            extra.unlink()
        db.mkdir()  # the database is gone and something else stands in its place
        res = client.get("/readyz")
        shutil.rmtree(db)
    assert res.status_code == 503
    assert res.json()["checks"]["database"] != "ok" and res.json()["checks"]["judge"] == "ok"


def test_a_running_service_logs_each_request_on_stderr_and_serves_metrics(tmp_path: Path):
    """The real `pluralign serve` process: the log handler the CLI installs, the header and the
    scrape through a plain HTTP client, the request log line carrying the same id."""
    import httpx

    from support import start_server, stop

    key = "svc-key-31415"
    proc, url = start_server(
        "--method", "random", "--db", str(tmp_path / "users.sqlite"), "--service-key-env", "PL_TELEMETRY_KEY",
        env={"PL_TELEMETRY_KEY": key, "PLURALIGN_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    try:
        auth = {"Authorization": f"Bearer {key}"}
        chosen = httpx.post(f"{url}/v1/choose", json=CHOOSE, headers={**auth, "X-Request-Id": "e2e-1"}, timeout=30)
        scrape = httpx.get(f"{url}/metrics", headers=auth, timeout=30)
        ready = httpx.get(f"{url}/readyz", headers=auth, timeout=30)
        refused = httpx.get(f"{url}/metrics", timeout=30)
    finally:
        stop(proc)
    assert chosen.status_code == 200 and chosen.headers["x-request-id"] == "e2e-1"
    assert ready.status_code == 200 and refused.status_code == 401  # metrics sit behind the key like every route
    got = samples(scrape.text)
    assert got[("pluralign_requests_total", (("route", "/v1/choose"), ("status", "200")))] == 1
    err = proc.stderr.read().decode() if proc.stderr else ""
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(r["route"], r["status"]) for r in lines[-4:]] == [  # after the start-up polls (401 without the key)
        ("/v1/choose", 200), ("/metrics", 200), ("/readyz", 200), ("unmatched", 401)
    ]  # fmt: skip
    assert lines[-4]["id"] == "e2e-1" and key not in err
