"""The judgement cache: what it keys on, and that it uses (and clears) only files that prove to be its own."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pluralign.prediction.judges.cache import JudgementCache
from pluralign.support.errors import CacheError
from support import one_line_error, openai_choose, run_cli


@pytest.mark.parametrize(
    "content",
    [b'{"my": "data"}\n', b"plain notes\n", b"SQLite format 3\x00" + b"\x00" * 200, b"\x00\x01\x02"],
    ids=["json", "text", "sqlite-header-garbage", "binary"],
)
def test_cache_clear_never_deletes_a_file_that_is_not_a_cache(tmp_path: Path, cli, content: bytes):
    victim = tmp_path / "mydata.json"
    victim.write_bytes(content)
    res = cli("cache", "clear", "--cache", str(victim))
    one_line_error(res, str(victim))
    assert victim.read_bytes() == content
    res = cli("cache", "stats", "--cache", str(victim))
    one_line_error(res)
    assert victim.read_bytes() == content


def test_another_programs_database_is_refused_and_untouched(tmp_path: Path, cli):
    db = tmp_path / "app.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE users (name TEXT)")
        con.execute("INSERT INTO users VALUES ('ada')")
    before = db.read_bytes()
    for args in (("cache", "clear", "--cache", str(db)), ("cache", "stats", "--cache", str(db))):
        one_line_error(cli(*args), "another program")
    res = openai_choose("http://127.0.0.1:9/v1", "--cache", str(db), cache=True)
    one_line_error(res, "not a pluralign cache")
    assert db.read_bytes() == before
    assert not Path(str(db) + "-wal").exists()


def test_a_cache_is_cleared_and_a_damaged_one_of_ours_removed(tmp_path: Path, cli):
    from pluralign.prediction.judges.cache import APPLICATION_ID, JudgementCache, proven_own

    path = tmp_path / "c.sqlite"
    JudgementCache(path).close()
    assert proven_own(path)
    res = cli("cache", "clear", "--cache", str(path))
    assert res.returncode == 0 and "cleared 0 judgements" in res.stdout
    # our header, damaged pages: proven ours, so clear may remove it
    head = bytearray(path.read_bytes()[:100])
    assert head[68:72] == APPLICATION_ID.to_bytes(4, "big")
    path.write_bytes(bytes(head) + b"\xff" * 4000)
    res = cli("cache", "clear", "--cache", str(path))
    assert res.returncode == 0 and "removed the damaged cache" in res.stdout, res.stderr
    assert not path.exists()


@pytest.mark.slow  # waits out SQLite's busy timeout
def test_a_locked_cache_is_reported_not_deleted(tmp_path: Path):
    from pluralign.prediction.judges.cache import JudgementCache

    path = tmp_path / "c.sqlite"
    JudgementCache(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"con = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "con.execute('PRAGMA locking_mode=EXCLUSIVE'); con.execute('BEGIN EXCLUSIVE')\n"
            "con.execute('INSERT INTO judgements VALUES (1, 1, 1, 1, 1, 1)')\n"
            "print('locked', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        res = run_cli("cache", "clear", "--cache", str(path), timeout=60)
        one_line_error(res, "locked")
        assert path.exists()
    finally:
        holder.kill()
        holder.wait()


def test_corrupted_and_locked_cache(tmp_path: Path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="not a pluralign judgement cache"):
        JudgementCache(bad)
    assert bad.read_bytes() == b"this is not a database" * 100  # refused, never rewritten
    locked = tmp_path / "locked.sqlite"
    JudgementCache(locked).close()
    holder = sqlite3.connect(locked)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        from pluralign.prediction.judges.base import JudgeResult

        with pytest.raises(CacheError, match="locked"):
            cache = JudgementCache(locked, timeout=0.3)
            cache.put("k", "b", "m", "x", JudgeResult(outputs=[{}], raw=["{}"]))
    finally:
        holder.rollback()
        holder.close()


def test_cache_cli_on_corrupted_file(tmp_path: Path, cli):
    """A file that is not provably a pluralign cache is reported and kept (`cache
    clear` used to delete any file it could not open); one whose header is ours is removed."""
    bad = tmp_path / "c.sqlite"
    bad.write_text("garbage" * 50)
    res = cli("cache", "stats", "--cache", str(bad))
    assert res.returncode == 2 and "not a pluralign judgement cache" in res.stderr and "Traceback" not in res.stderr
    res = cli("cache", "clear", "--cache", str(bad))
    assert res.returncode == 2 and bad.read_text() == "garbage" * 50
    ours = tmp_path / "ours.sqlite"
    JudgementCache(ours).close()
    ours.write_bytes(ours.read_bytes()[:100] + b"garbage" * 50)
    res = cli("cache", "clear", "--cache", str(ours))
    assert res.returncode == 0 and not ours.exists()


def test_cache_key_leaves_out_what_cannot_change_an_answer():
    from pluralign.prediction.judges.base import ChatMessage, GenerationSettings, JudgeRequest
    from pluralign.prediction.judges.cache import request_key

    def req(**kw):
        return JudgeRequest(
            messages=[ChatMessage(role="user", content="q")], json_schema={}, settings=GenerationSettings(**kw)
        )

    assert request_key("b", "m", req(max_attempts=1)) == request_key("b", "m", req(max_attempts=5))
    assert request_key("b", "m", req(seed=1)) != request_key("b", "m", req(seed=2))
    assert request_key("b", "m", req(temperature=0.0)) != request_key("b", "m", req(temperature=0.7))


@pytest.mark.parametrize(
    ("url", "needles"),
    [
        ("postgresql://ann:pw-SECRET-1@db.invalid:5432/pl", ("unavailable", "***@db.invalid")),
        ("postgres://ann:pw-SECRET-1@127.0.0.1:9/pl", ("unavailable", "***@127.0.0.1")),
        ("mysql+pymysql://root:pw-SECRET-1@h/x", ("URL", "postgresql://")),
        ("sqlite:///tmp/x.sqlite", ("URL", "SQLite file path")),
    ],
)
@pytest.mark.parametrize("command", ["serve", "cache"])
def test_a_database_url_is_a_server_or_refused(tmp_path: Path, url: str, needles: tuple[str, str], command: str):
    """Issue 40: `serve --db postgresql://...` made a folder named `postgresql:` with a SQLite file
    inside. A postgresql:// URL is a server (here one that cannot be reached: one line, exit 2,
    the password masked); any other URL is refused in one line; nothing is made in either case."""
    args = ("serve", "--method", "random", "--db", url) if command == "serve" else ("cache", "stats", "--cache", url)
    res = run_cli(*args, cwd=tmp_path, timeout=120)
    one_line_error(res, *needles)
    assert "pw-SECRET-1" not in res.stderr + res.stdout
    assert list(tmp_path.iterdir()) == []
