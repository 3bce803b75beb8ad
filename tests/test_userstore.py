"""The user store on its own, on both engines (a real SQLite file, a real PostgreSQL server): a
choice and its profile stored as one unit, a forgotten user never written back, feedback on
one completion idempotent, namespaces apart, completions trimmed; v1 files migrated, and no
file or database that is not ours opened."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from pluralign.people.profile import ChoiceRecord
from pluralign.people.userstore import HistoryChanged, UserForgotten, UserStore
from pluralign.support.errors import InputError


def _record(k: int, chosen: int = 0) -> ChoiceRecord:
    return ChoiceRecord(
        id=f"r{k}",
        question=f"q{k}",
        responses=["a", "b"],
        chosen=chosen,
        predictions=[{"care": 0.9}, {"care": 0.1}],
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "u.sqlite")
    return request.getfixturevalue("pg_url")


def _completion_ids(place: str) -> list[str]:
    """The completions' rows as the database holds them (read beside the store)."""
    if place.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(place) as conn:
            return [r[0] for r in conn.execute("SELECT id FROM user_completions")]
    return [r[0] for r in sqlite3.connect(place).execute("SELECT id FROM user_completions")]


def _add(store: UserStore, user: str, k: int, completion: str | None = None, ns: str = "default") -> int:
    read = store.snapshot(ns, user)
    return store.commit_choice(read, completion, _record(k), {"target": {"care": 1.0}, "k": k}, k)


def test_a_choice_and_its_profile_are_one_unit(place: str):
    store = UserStore(place)
    assert _add(store, "ann", 1) == 1 and _add(store, "ann", 2) == 2
    shown = store.profile("default", "ann")
    assert shown is not None and shown.profile["k"] == 2 and shown.n_choices == 2
    assert [r.id for r in store.history("default", "ann")] == ["r1", "r2"]


def test_work_that_read_a_user_before_they_were_forgotten_writes_nothing(place: str):
    store = UserStore(place)
    _add(store, "ann", 1)
    read = store.snapshot("default", "ann")  # a feedback reads ann, then fits for a while ...
    assert store.forget("default", "ann") == 2  # ... meanwhile ann is forgotten
    with pytest.raises(UserForgotten):
        store.commit_choice(read, None, _record(2), {"k": 2}, 2)
    assert store.profile("default", "ann") is None and store.history("default", "ann") == []
    # a new feedback after the forget starts a new user, with nothing of the old one
    _add(store, "ann", 3)
    assert [r.id for r in store.history("default", "ann")] == ["r3"]
    # a completion steered by the old ann's profile is not kept either
    old = store.snapshot("default", "ann").incarnation
    store.forget("default", "ann")
    assert store.add_completion("default", "c1", "ann", _record(4), incarnation=old) is False
    assert store.completion("default", "c1") is None


def test_a_fit_on_an_old_history_is_not_stored(place: str):
    store = UserStore(place)
    _add(store, "ann", 1)
    read = store.snapshot("default", "ann")
    _add(store, "ann", 2)  # another feedback lands first
    with pytest.raises(HistoryChanged):
        store.commit_choice(read, None, _record(3), {"k": 3}, 3)
    assert len(store.history("default", "ann")) == 2 and store.profile("default", "ann").profile["k"] == 2


def test_one_choice_per_completion_replaced_in_place(place: str):
    store = UserStore(place)
    _add(store, "ann", 1, completion="chatcmpl-a")
    _add(store, "ann", 2)
    read = store.snapshot("default", "ann")
    assert read.find("chatcmpl-a") is not None
    assert store.commit_choice(read, "chatcmpl-a", _record(9, chosen=1), {"k": 9}, 2) == 2
    history = store.history("default", "ann")
    assert [r.id for r in history] == ["r9", "r2"] and history[0].chosen == 1


def test_namespaces_never_see_each_other(place: str):
    store = UserStore(place)
    _add(store, "ann", 1, ns="app1")
    assert store.profile("app2", "ann") is None and store.history("app2", "ann") == []
    assert store.forget("app2", "ann") == 0 and store.profile("app1", "ann") is not None
    store.add_completion("app1", "c1", None, _record(1))
    assert store.completion("app2", "c1") is None and store.completion("app1", "c1") is not None
    assert store.users("app1") == ["ann"] and store.users("app2") == []


def test_completions_are_kept_for_a_bounded_time(place: str):
    store = UserStore(place, completion_ttl=0.5)
    store.add_completion("default", "old", "ann", _record(1))
    time.sleep(0.7)
    assert store.completion("default", "old") is None
    store.add_completion("default", "new", "ann", _record(2))  # trims the old one from the database
    assert _completion_ids(place) == ["new"]


def test_a_v1_store_is_migrated_with_nothing_lost(tmp_path: Path):
    path = tmp_path / "v1.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE choices (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, record TEXT NOT NULL,
                              created REAL NOT NULL);
        CREATE INDEX choices_by_user ON choices (user, id);
        CREATE TABLE profiles (user TEXT PRIMARY KEY, profile TEXT NOT NULL, n_choices INTEGER NOT NULL,
                               updated REAL NOT NULL);
        CREATE TABLE completions (id TEXT PRIMARY KEY, user TEXT, record TEXT NOT NULL, created REAL NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        """
    )
    for k in range(3):
        db.execute(
            "INSERT INTO choices (user, record, created) VALUES (?, ?, ?)", ("ann", _record(k).model_dump_json(), 1.0)
        )
    db.execute("INSERT INTO profiles VALUES (?, ?, ?, ?)", ("ann", json.dumps({"k": 2}), 3, 1.0))
    db.execute("INSERT INTO completions VALUES (?, ?, ?, ?)", ("c1", "ann", _record(7).model_dump_json(), time.time()))
    db.commit()
    db.close()
    store = UserStore(path)
    assert [r.id for r in store.history("default", "ann")] == ["r0", "r1", "r2"]
    assert store.profile("default", "ann").profile == {"k": 2} and store.completion("default", "c1") is not None
    assert _add(store, "ann", 5) == 4  # and it goes on from there
    UserStore(path)  # opening it again changes nothing


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_database_of_another_program_is_refused_and_left_alone(tmp_path: Path):
    other = tmp_path / "other_program.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE invoices (id INTEGER, amount REAL)")
    db.execute("INSERT INTO invoices VALUES (1, 9.5)")
    db.commit()
    db.close()
    before = _digest(other)
    with pytest.raises(InputError, match="another program"):
        UserStore(other)
    assert _digest(other) == before
    tables = {r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}
    (tmp_path / "text.sqlite").write_text("not a database at all, just some notes\n" * 10)
    with pytest.raises(InputError):
        UserStore(tmp_path / "text.sqlite")
    assert (tmp_path / "text.sqlite").read_text().startswith("not a database")


@pytest.mark.parametrize("kind", ["link", "fifo", "folder"])
def test_the_store_opens_only_a_regular_file(tmp_path: Path, kind: str):
    path = tmp_path / "users.sqlite"
    if kind == "link":
        target = tmp_path / "elsewhere.sqlite"
        UserStore(target)
        path.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    started = time.monotonic()
    with pytest.raises(InputError, match=r"link|not a regular file|folder"):
        UserStore(path)
    assert time.monotonic() - started < 10  # a pipe is refused, never waited on


def test_stored_completions_list_in_order_on_both_engines(place: str):
    store = UserStore(place)
    for k, model in enumerate(["m1", "m2", "m1", "m1"]):
        store.add_completion(
            "default", f"c{k}", "ann", _record(k), response=f'{{"k": {k}}}', model=model, metadata={"k": str(k % 2)}
        )
    assert store.completion_responses("default") == (['{"k": 0}', '{"k": 1}', '{"k": 2}', '{"k": 3}'], False)
    assert store.completion_responses("default", model="m1", limit=2) == (['{"k": 0}', '{"k": 2}'], True)
    assert store.completion_responses("default", after="c1") == (['{"k": 2}', '{"k": 3}'], False)
    assert store.completion_responses("default", after="c2", newest_first=True) == (['{"k": 1}', '{"k": 0}'], False)
    assert store.completion_responses("default", metadata={"k": "1"}) == (['{"k": 1}', '{"k": 3}'], False)
    assert store.completion_response("default", "c3") == '{"k": 3}'
    with pytest.raises(InputError, match="after"):
        store.completion_responses("default", after="nope")


def test_a_new_users_feedback_in_flight_when_the_name_is_forgotten_stores_nothing(place: str):
    """Feedback for a user who does not exist yet reads them (nobody), fits, and meanwhile the
    name is forgotten: the commit stores nothing, as for a user who existed. A feedback read
    after the forget is stored."""
    store = UserStore(place)
    read = store.snapshot("default", "newcomer")
    assert read.incarnation is None and read.forgets == 0
    assert store.forget("default", "newcomer") == 0
    with pytest.raises(UserForgotten):
        store.commit_choice(read, None, _record(1), {"k": 1}, 1)
    assert store.history("default", "newcomer") == [] and store.users("default") == []
    assert _add(store, "newcomer", 2) == 1
    read = store.snapshot("default", "newcomer")  # and again, for a user who exists
    store.forget("default", "newcomer")
    with pytest.raises(UserForgotten):
        store.commit_choice(read, None, _record(3), {"k": 3}, 2)
    assert store.forget("other-app", "newcomer") == 0 and _add(store, "newcomer", 4, ns="other-app") == 1


def test_a_v3_store_gains_the_forget_counts(tmp_path: Path):
    """A store of the schema before forgets were counted (v3) opens, migrated, with its users."""
    path = tmp_path / "v3.sqlite"
    store = UserStore(path)
    _add(store, "ann", 1)
    db = sqlite3.connect(path)
    db.execute("DROP TABLE user_forgets")
    db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    store = UserStore(path)
    assert [r.id for r in store.history("default", "ann")] == ["r1"]
    store.forget("default", "ann")
    assert sqlite3.connect(path).execute("SELECT forgets FROM user_forgets").fetchall() == [(1,)]
