"""Issue 40: many `pluralign serve` replicas and `pluralign eval` workers on one real PostgreSQL.
Two replicas share every user (feedback on either, a completion made on one answered on the
other), a replica killed with SIGKILL loses nothing it acknowledged, a database that goes away
gives 503 with Retry-After and its password nowhere, and two evaluation workers on one shared
judgement cache ask the judge each request once between them."""

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

from pluralign.choice.attributes import DEFAULT_REGISTRY
from pluralign.people.profile import fit_profile
from pluralign.people.userstore import UserStore
from postgres_server import PASSWORD
from support import PAIR, start_server, stop

pytestmark = pytest.mark.slow  # starts `pluralign serve` replicas and eval workers


def _replica(db: str, tmp: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """A replica; judge-free (``--method random``) unless ``extra`` names a method."""
    method = () if "--method" in extra else ("--method", "random")
    return start_server(*method, "--db", db, *extra, env={"PLURALIGN_HOME": str(tmp / "home")})


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path, scripted):
    """Two replicas on one database, each with a scripted judge and a scripted generator (two
    candidates a chat)."""
    generator, _ = scripted(
        [("ok", "Water them every day; it is what a good neighbour does."), ("ok", "Say no; you have plans.")]
    )
    judge, _ = scripted([("ok", json.dumps({"A": 80, "B": 20}))])
    extra = (
        "--method", "spm-zeroshot", "--backend", "openai", "--base-url", judge, "--model", "m", "--no-cache",
        "--estimator", "sample", "--samples", "1", "--no-reasoning",
        "--generator-base-url", generator, "--generator-model", "g", "--candidates", "2",
    )  # fmt: skip
    started = [_replica(pg_url, tmp_path, *extra) for _ in range(2)]
    yield [url for _, url in started], pg_url
    for proc, _ in started:
        if proc.poll() is None:
            stop(proc)


def _post(url: str, user: str, k: int, chosen: int) -> int:
    body = {**PAIR, "question": f"{PAIR['question']} ({k})", "user": user, "chosen": chosen}
    try:
        res = httpx.post(f"{url}/v1/feedback", json=body, timeout=120)
        if res.status_code != 200:
            print(res.status_code, res.text)
        return res.status_code
    except httpx.HTTPError:  # a replica that was killed: never acknowledged
        return 0


def _assert_fitted(store: UserStore, url: str, user: str) -> list:
    """The profile the service shows is a `profile fit` of the stored history."""
    history = store.history("default", user)
    shown = httpx.get(f"{url}/v1/users/{user}/profile", timeout=30).json()
    assert shown["n_choices"] == len(history)
    expected = fit_profile(DEFAULT_REGISTRY.require(["care", "authority"]), history)
    assert shown["profile"]["target"] == expected.target
    return history


def test_two_replicas_share_every_user_and_lose_no_feedback(replicas):
    """200 posts from 20 users, spread over both replicas at once: every history holds its 10
    choices, and each profile (read from either replica) is the fit of the whole history."""
    (a, b), db = replicas
    users = [f"user {k} ✓" for k in range(20)]
    jobs = [(u, k) for u in users for k in range(10)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda j: _post((a, b)[j[1] % 2], j[0], j[1], users.index(j[0]) % 2), jobs))
    assert statuses == [200] * 200
    store = UserStore(db)
    for i, user in enumerate(users):
        history = _assert_fitted(store, (a, b)[i % 2], user)
        assert len(history) == 10 and {r.chosen for r in history} == {i % 2}
        assert sorted(int(r.question.rsplit("(", 1)[1][:-1]) for r in history) == list(range(10))
    store.close()


def test_a_completion_made_on_one_replica_takes_feedback_on_the_other(replicas):
    from openai import OpenAI

    (a, b), _ = replicas
    made = OpenAI(base_url=f"{a}/v1", api_key="unused", timeout=120).chat.completions.create(
        model="g", messages=[{"role": "user", "content": "What do I say?"}], user="ann", store=True,
        extra_body={"pluralign": {"target": {"care": 1.0}}},
    )  # fmt: skip
    fetched = httpx.get(f"{b}/v1/chat/completions/{made.id}", timeout=30)
    assert fetched.status_code == 200 and fetched.json()["id"] == made.id
    res = httpx.post(
        f"{b}/v1/feedback",
        json={"user": "ann", "completion_id": made.id, "choice": 0, "attributes": ["care"]},
        timeout=120,
    )
    assert res.status_code == 200 and res.json()["n_choices"] == 1, res.text
    assert httpx.get(f"{a}/v1/users/ann/profile", timeout=30).json()["n_choices"] == 1
    assert httpx.delete(f"{a}/v1/users/ann", timeout=30).json()["forgotten"] is True
    assert httpx.get(f"{b}/v1/users/ann/profile", timeout=30).status_code == 404


def test_a_replica_killed_mid_way_loses_nothing_it_acknowledged(pg_url: str, tmp_path: Path):
    """Posts go to both replicas; one is killed with SIGKILL while they run. Every post that got
    a 200 is in its user's history, and every profile is still the fit of its history."""
    started = [_replica(pg_url, tmp_path) for _ in range(2)]
    (victim, a), (_, b) = started
    acknowledged: list[tuple[str, int]] = []
    lock = threading.Lock()

    def post(job: tuple[str, int]) -> None:
        user, k = job
        if _post((a, b)[k % 2], user, k, k % 2) == 200:
            with lock:
                acknowledged.append(job)
        if job == ("u3", 10):  # a third of the way through
            os.kill(victim.pid, signal.SIGKILL)

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, [(f"u{u}", k) for k in range(30) for u in range(6)]))
        assert victim.wait(timeout=30) == -signal.SIGKILL
        assert 90 <= len(acknowledged) < 180  # replica b took its half; a answered until it died
        store = UserStore(pg_url)
        for u in range(6):
            history = _assert_fitted(store, b, f"u{u}")
            kept = {int(r.question.rsplit("(", 1)[1][:-1]) for r in history}
            assert {k for user, k in acknowledged if user == f"u{u}"} <= kept
        store.close()
    finally:
        for proc, _ in started:
            if proc.poll() is None:
                stop(proc)


def test_a_database_that_goes_away_gives_503_and_no_password(postgres, pg_url: str, tmp_path: Path):
    proc, url = _replica(pg_url, tmp_path)
    try:
        assert _post(url, "ann", 1, 0) == 200
        postgres.stop(fast=True)
        try:
            res = httpx.post(f"{url}/v1/feedback", json={**PAIR, "user": "ann", "chosen": 1}, timeout=60)
            ready = httpx.get(f"{url}/readyz", timeout=60)
        finally:
            postgres.start()
        assert res.status_code == 503 and res.headers["retry-after"] == "5", res.text
        assert "unavailable" in res.text and PASSWORD not in res.text
        assert ready.status_code == 503 and PASSWORD not in ready.text
        for _ in range(60):  # back: the pool reconnects (a client waits as Retry-After says)
            if httpx.get(f"{url}/readyz", timeout=30).status_code == 200:
                break
            time.sleep(0.5)
        assert _post(url, "ann", 2, 1) == 200
        history = UserStore(pg_url).history("default", "ann")
        assert [r.chosen for r in history] == [0, 1]  # the refused post stored nothing
    finally:
        stop(proc)
    assert PASSWORD not in proc.stderr.read().decode() + proc.stdout.read().decode()


def test_two_eval_workers_on_one_shared_cache_judge_each_request_once(
    pg_url: str, tmp_path: Path, scripted, helpsteer2_dir: Path
):
    """Two `pluralign eval` processes, same method and items, one postgresql:// cache: the
    judge answers each distinct request once between them, and both runs have every item."""
    upstream, script = scripted([("slow", 0.3, json.dumps({"A": 40, "B": 60}))])  # 40 requests: 3 s or more
    common = [
        "eval", "--method", "spm-zeroshot", "--benchmark", str(helpsteer2_dir), "--limit", "8",
        "--backend", "openai", "--base-url", upstream, "--model", "m", "--estimator", "sample", "--samples", "1",
        "--no-reasoning", "--max-retries", "0", "--cache", pg_url, "--target", "high", "--workers", "2",
    ]  # fmt: skip
    env = {**os.environ, "PLURALIGN_HOME": str(tmp_path / "home")}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "pluralign", *common, "--out", str(tmp_path / f"w{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    distinct = {json.dumps(b, sort_keys=True) for b in script.bodies}
    assert len(distinct) == 8 * 5 and script.hits == len(distinct)  # each of the 40 requests asked once
    for i in range(2):
        scores = [json.loads(line) for line in (tmp_path / f"w{i}" / "assessments.jsonl").read_text().splitlines()]
        assert len({row["item"] for row in scores}) == 8
    assert PASSWORD not in "".join(out + err for out, err in outputs)
    written = [p for i in range(2) for p in (tmp_path / f"w{i}").rglob("*") if p.is_file()]
    assert written and not any(PASSWORD.encode() in p.read_bytes() for p in written)
