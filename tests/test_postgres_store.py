"""The user store and the judgement cache on a real PostgreSQL server, where SQLite has no
counterpart: many writers at once from separate pools (as replicas are), a schema created by
replicas that start together, another program's tables and a newer schema refused, and a
server that goes away: refused as unavailable with its password masked, nothing half-stored,
and working again when it is back."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from pluralign.people.profile import ChoiceRecord
from pluralign.people.userstore import HistoryChanged, UserForgotten, UserStore
from pluralign.support.errors import DatabaseUnavailable, InputError, one_line
from postgres_server import PASSWORD


def _record(k: int) -> ChoiceRecord:
    return ChoiceRecord(
        id=f"r{k}", question=f"q{k}", responses=["a", "b"], chosen=k % 2, predictions=[{"care": 0.9}, {"care": 0.1}]
    )


def _feedback(store: UserStore, user: str, k: int) -> None:
    """What a replica does with one feedback: read, fit (here: count), commit; again on a race."""
    while True:
        read = store.snapshot("default", user)
        try:
            store.commit_choice(read, f"c{k}", _record(k), {"n": len(read.history) + 1}, len(read.history) + 1)
            return
        except HistoryChanged:
            continue


def test_writers_from_two_pools_lose_nothing(pg_url: str):
    """Two stores (two pools, as two replicas) take 60 feedbacks for 3 users at once, 6 threads:
    every choice is kept once and each profile was fitted on the whole history."""
    stores = [UserStore(pg_url, pool_size=3), UserStore(pg_url, pool_size=3)]
    jobs = [(f"u{k % 3}", k) for k in range(60)]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for user, k in jobs[i::6]:
                _feedback(stores[i % 2], user, k)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    for u in range(3):
        history = stores[0].history("default", f"u{u}")
        assert sorted(int(r.id[1:]) for r in history) == [k for k in range(60) if k % 3 == u]
        stored = stores[1].profile("default", f"u{u}")
        assert stored is not None and stored.profile == {"n": 20} and stored.n_choices == 20
    for s in stores:
        s.close()


def test_replicas_that_start_together_create_the_schema_once(pg_url: str):
    stores: list[UserStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(UserStore(pg_url, pool_size=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(stores) == 4
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)
    for s in stores:
        s.close()


def test_another_programs_tables_are_refused_and_left_alone(pg_url: str):
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, email TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'a@example.org')")
    with pytest.raises(InputError, match="another program") as refused:
        UserStore(pg_url)
    assert PASSWORD not in str(refused.value) and "***" in str(refused.value)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT * FROM users").fetchall() == [(1, "a@example.org")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"users"}


def test_a_newer_schema_is_refused(pg_url: str):
    UserStore(pg_url).close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(InputError, match="schema version 99"):
        UserStore(pg_url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ann:pw-SECRET-1@127.0.0.1:{port}/pl",
        "postgres://ann:pw-SECRET-1@localhost:{port}/pl?sslmode=disable",
        "postgresql://127.0.0.1:{port}/pl?user=ann&password=pw-SECRET-1",
    ],
)
def test_an_unreachable_server_is_unavailable_with_its_password_masked(url: str):
    from support import free_port

    with pytest.raises(DatabaseUnavailable) as refused:
        UserStore(url.format(port=free_port()))
    text = one_line(refused.value)
    assert "pw-SECRET-1" not in text and "unavailable" in text


def test_a_server_that_goes_away_refuses_and_then_serves_again(postgres, pg_url: str):
    store = UserStore(pg_url, pool_size=2)
    _feedback(store, "ann", 1)
    postgres.stop(fast=True)
    try:
        with pytest.raises(DatabaseUnavailable) as refused:
            _feedback(store, "ann", 2)
        assert PASSWORD not in one_line(refused.value)
    finally:
        postgres.start()
    assert [r.id for r in store.history("default", "ann")] == ["r1"]  # nothing half-stored
    _feedback(store, "ann", 3)
    assert [r.id for r in store.history("default", "ann")] == ["r1", "r3"]
    store.close()


def _result(text: str):
    from pluralign.prediction.judges.base import JudgeResult

    return JudgeResult(outputs=[json.loads(text)], raw=[text])


def test_the_judgement_cache_on_postgres_keeps_answers_and_claims(pg_url: str, cli):
    from pluralign.prediction.judges.cache import open_cache

    one, two = open_cache(pg_url), open_cache(pg_url)  # two workers
    assert one.shared and one.get("k1") is None
    assert one.claim(["k1", "k2"], "w1", 60) == {"k1", "k2"}
    assert two.claim(["k1", "k2", "k3"], "w2", 60) == {"k3"}  # held by w1
    one.put("k1", "openai", "m", "spm", _result('{"A": 1}'))
    one.release(["k1", "k2"], "w1")
    assert two.get("k1") is not None and two.get("k1").cached
    assert two.claim(["k2"], "w2", 60) == {"k2"}  # released: free again
    assert one.claim(["k2"], "w1", -1) == set() and two.claim(["k2"], "w2", -1) == {"k2"}
    assert one.claim(["k2"], "w1", 60) == {"k2"}  # w2's claim (made to lapse at once) is taken over
    stats = cli("cache", "stats", "--cache", pg_url)
    assert stats.returncode == 0 and "1 judgements" in stats.stdout and PASSWORD not in stats.stdout, stats.stderr
    cleared = cli("cache", "clear", "--cache", pg_url)
    assert cleared.returncode == 0 and "cleared 1 judgements" in cleared.stdout and PASSWORD not in cleared.stdout
    assert two.get("k1") is None
    one.close()
    two.close()


def test_the_cache_pool_holds_the_connections_asked_for(pg_url: str):
    """--cache-pool sizes the cache's connections (N replicas x (--db-pool + --cache-pool) must
    stay under the server's max_connections)."""
    from pluralign.settings import make_settings

    cache = make_settings({"cache_path": pg_url, "cache_pool": 2}).cache_options().open()
    assert cache is not None and cache.db.pool.max_size == 2  # type: ignore[attr-defined]
    cache.close()


class _HeldJudge:
    """A judge that answers only when the test lets it: forces the fault of a judgement that
    outlasts its claim."""

    name, model, concurrent_requests = "openai", "m", 1

    def __init__(self, calls: list[str], go: threading.Event) -> None:
        self.calls, self.go = calls, go

    def generate(self, requests):
        self.calls.append("asked")
        assert self.go.wait(60)
        return [_result('{"A": 1}') for _ in requests]

    def close(self) -> None:
        pass


def test_a_claim_is_renewed_while_its_request_is_judged(pg_url: str):
    """A worker whose judge takes longer than a claim lasts keeps the claim: after two claim
    lifetimes a second worker still finds the request taken (and, told to wait, gets the first
    worker's answer) instead of asking the judge again. Old code: the claim lapsed, asked twice."""
    from pluralign.prediction.judges.base import ChatMessage, JudgeRequest
    from pluralign.prediction.judges.cache import CachedBackend, defer_claimed, open_cache
    from pluralign.support.errors import ClaimedElsewhere

    calls: list[str] = []
    go = threading.Event()
    one = CachedBackend(_HeldJudge(calls, go), open_cache(pg_url), "spm")
    two = CachedBackend(_HeldJudge(calls, threading.Event()), open_cache(pg_url), "spm")
    two.inner.go.set()  # the second worker's judge answers at once: asked, it would show
    one.claim_seconds = two.claim_seconds = 3.0
    request = JudgeRequest(messages=[ChatMessage(role="user", content="q")], json_schema={"type": "object"})
    answers: list = []
    first = threading.Thread(target=lambda: answers.append(one.generate([request])))
    first.start()
    deadline = time.monotonic() + 30
    while calls != ["asked"] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2 * one.claim_seconds + 1)  # the claim, unrenewed, would have lapsed twice
    try:
        with defer_claimed(), pytest.raises(ClaimedElsewhere):
            two.generate([request])
        waiting = threading.Thread(target=lambda: answers.append(two.generate([request])))
        waiting.start()
    finally:
        go.set()  # the held judge answers even when an assertion above failed
    first.join(60)
    waiting.join(60)
    assert calls == ["asked"]
    assert len(answers) == 2 and sorted(a[0].cached for a in answers) == [False, True]
    one.close()
    two.close()


def test_the_cache_refuses_another_programs_judgements_table(pg_url: str):
    from pluralign.prediction.judges.cache import open_cache
    from pluralign.support.errors import NotACacheError

    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE judgements (court TEXT, verdict TEXT)")
    with pytest.raises(NotACacheError, match="another program"):
        open_cache(pg_url)
    with psycopg.connect(pg_url) as conn:
        columns = [
            r[0]
            for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'judgements'")
        ]
    assert columns == ["court", "verdict"]


def test_a_v3_database_is_migrated_under_the_schema_lock(pg_url: str):
    """PostgreSQL's migrations run too: a database at version 3 gains the forget counts."""
    store = UserStore(pg_url)
    _feedback(store, "ann", 1)
    store.close()
    with psycopg.connect(pg_url) as conn:
        conn.execute("DROP TABLE user_forgets")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    store = UserStore(pg_url)
    assert [r.id for r in store.history("default", "ann")] == ["r1"]
    store.forget("default", "ann")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT forgets FROM user_forgets").fetchall() == [(1,)]
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)
    store.close()


def test_forgets_and_feedback_for_one_name_from_two_pools_never_resurrect(pg_url: str):
    """Two stores (two replicas) race feedback and forgets for one name: whatever survives was
    read after the last forget, and the profile is the fit of what survives."""
    stores = [UserStore(pg_url, pool_size=2), UserStore(pg_url, pool_size=2)]
    stop = threading.Event()

    def forgetter() -> None:
        while not stop.is_set():
            stores[1].forget("default", "eve")

    thread = threading.Thread(target=forgetter)
    thread.start()
    try:
        for k in range(40):
            read = stores[0].snapshot("default", "eve")
            try:
                stores[0].commit_choice(read, None, _record(k), {"n": len(read.history) + 1}, len(read.history) + 1)
            except (HistoryChanged, UserForgotten):
                pass
    finally:
        stop.set()
        thread.join(timeout=60)
    final = stores[0].snapshot("default", "eve")
    stored = stores[0].profile("default", "eve")
    assert (stored is None) == (final.incarnation is None)
    if stored is not None:
        assert stored.profile == {"n": len(final.history)}
    for s in stores:
        s.close()
