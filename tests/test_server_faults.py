"""The service under faults: deadlines, a bounded queue, cancellation and clear upstream errors in the real
service (`pluralign serve` in a subprocess); the judge server behind it is scripted to fail."""

from __future__ import annotations

import concurrent.futures
import json
import time
from pathlib import Path

import httpx
import pytest

from support import run_cli, start_server, stop

pytestmark = pytest.mark.slow  # every test here starts `pluralign serve`

VALID = json.dumps({"A": {"reasoning": "Fine.", "score": 70}, "B": {"reasoning": "Weak.", "score": 20}})
BODY = {"question": "Q?", "responses": ["a", "b"], "target": {"care": 1.0}}


def _serve(upstream: str, *extra: str) -> tuple:
    return start_server(
        "--backend",
        "openai",
        "--base-url",
        upstream,
        "--model",
        "m",
        "--method",
        "spm-zeroshot",
        "--samples",
        "1",
        "--no-cache",
        "--max-retries",
        "0",
        *extra,
    )


def test_a_hung_judge_meets_the_deadline_and_health_does_not_wait(scripted):
    upstream, _ = scripted([("hang", 30)])
    proc, url = _serve(upstream, "--decision-timeout", "6", "--timeout", "60")
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            pending = pool.submit(httpx.post, f"{url}/v1/choose", json=BODY, timeout=60)
            time.sleep(0.5)
            h0 = time.perf_counter()
            health = httpx.get(f"{url}/healthz", timeout=5)
            health_seconds = time.perf_counter() - h0
            res = pending.result()
            took = time.perf_counter() - t0
        assert health.status_code == 200 and health.json()["queue"] == 1
        assert health_seconds < 4  # not behind the decision, which ends at its deadline 5.5 s later
        assert res.status_code == 504 and "deadline of 6 s" in res.json()["detail"]
        assert took < 20  # the deadline, not the judge's 30 s
    finally:
        stop(proc)


def test_a_full_queue_answers_503_with_retry_after(scripted):
    upstream, _ = scripted([("slow", 6, VALID), ("ok", VALID)])
    proc, url = _serve(upstream, "--max-queue", "1", "--decision-timeout", "30", "--timeout", "60")
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = []
            for i in range(3):
                futures.append(pool.submit(httpx.post, f"{url}/v1/choose", json={**BODY, "seed": i}, timeout=60))
                time.sleep(0.4)
            answers = [f.result() for f in futures]
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 200, 503], [r.text for r in answers]
        full = next(r for r in answers if r.status_code == 503)
        assert int(full.headers["retry-after"]) >= 1 and "retry later" in full.json()["detail"]
    finally:
        stop(proc)


def test_a_client_that_goes_away_frees_the_judge(scripted):
    upstream, script = scripted([("hang", 20), ("ok", VALID)])
    proc, url = _serve(upstream, "--decision-timeout", "60", "--timeout", "60")
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/choose", json=BODY, timeout=1.0)
        t0 = time.perf_counter()
        res = httpx.post(f"{url}/v1/choose", json={**BODY, "seed": 1}, timeout=60)
        assert res.status_code == 200, res.text
        assert time.perf_counter() - t0 < 8  # not behind the abandoned 20 s call
        assert script.hits == 2
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        (
            {"choices": [{"message": {"content": VALID}}], "usage": {"prompt_tokens": "lots", "completion_tokens": 3}},
            502,
            "prompt_tokens 'lots'",
        ),
        ({"choices": []}, 502, "no choices[0].message.content"),
        ({"choices": [{"message": {"content": 42}}]}, 502, "content is a int"),
    ],
)
def test_upstream_oddities_are_502_with_a_message(scripted, payload, status, message):
    upstream, _ = scripted([("payload", payload)])
    proc, url = _serve(upstream)
    try:
        res = httpx.post(f"{url}/v1/choose", json=BODY, timeout=60)
        assert res.status_code == status and message in res.json()["detail"], res.text
    finally:
        stop(proc)


def test_dead_judge_server_is_503(tmp_path: Path):
    proc, url = _serve("http://127.0.0.1:9/v1", "--timeout", "2")
    try:
        res = httpx.post(f"{url}/v1/choose", json=BODY, timeout=60)
        assert res.status_code == 503 and "unreachable" in res.json()["detail"]
    finally:
        stop(proc)


def test_never_valid_json_skips_the_item_and_the_next_run_retries_it(helpsteer2_dir: Path, tmp_path: Path, scripted):
    broken, _ = scripted([("ok", "this is not JSON")])
    out = tmp_path / "run"
    common = ("--benchmark", str(helpsteer2_dir), "--method", "spm-zeroshot", "--model", "m", "--backend", "openai")
    common += ("--samples", "1", "--limit", "2", "--target", "high", "--out", str(out), "--no-cache")
    common += ("--max-retries", "0")
    res = run_cli("eval", *common, "--base-url", broken)
    assert res.returncode == 0, res.stderr
    assert "2 items failed (retried by the next run)" in res.stdout
    decisions = [json.loads(line) for line in (out / "decisions.jsonl").read_text().splitlines()]
    assert all(d["failed"] and "no answer valid for the schema" in d["failed"] for d in decisions)
    results = json.loads((out / "results.json").read_text())
    assert results["n_failed"] == 2 and results["targets"][0]["n_failed"] == 2
    assert results["targets"][0]["accuracy"] is None and results["targets"][0]["n_scored"] == 0
    # --on-invalid stop: the first such item ends the run with one line
    res = run_cli("eval", *common, "--base-url", broken, "--on-invalid", "stop")
    assert res.returncode == 2 and "no answer valid for the schema" in res.stderr
    # a healthy judge: the failed items are judged again and scored
    good, _ = scripted([("ok", VALID)])
    res = run_cli("eval", *common, "--base-url", good)
    assert res.returncode == 0, res.stderr
    assert "judged 2 items now, 0 resumed" in res.stdout and "items failed" not in res.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["n_failed"] == 0 and results["targets"][0]["n_scored"] + results["targets"][0]["n_skipped"] == 2
    # a rerun resumes everything and says it made no calls now
    res = run_cli("eval", *common, "--base-url", good)
    assert "LLM calls made now 0" in res.stdout and "judged 0 items now, 2 resumed" in res.stdout
