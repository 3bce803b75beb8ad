"""The third hostile sweep's file classes: no read or write through a link or into a pipe below a
folder pluralign owns (a run, the run browser's --runs, the prefix store), folders included;
label-to-file names that cannot collide; --overwrite removing only what a run wrote; every
database pluralign opens its own or refused; named outputs used as given; one writer per
benchmark. Each class with variants beyond the sweep's example."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from pluralign.prediction.judges.cache import JudgementCache
from support import ROOT, one_line_error, run_cli

EVAL = ("eval", "--method", "oracle")


def _eval(bench: Path, out: Path, *extra: str, limit: int = 2):
    return run_cli(*EVAL, "--benchmark", str(bench), "--out", str(out), "--limit", str(limit), *extra)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- links below a run folder, folders included -----------------------------------------------


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_link_planted_as_input_output_is_never_written_through(helpsteer2_dir, tmp_path, overwrite):
    out, victim = tmp_path / "run", tmp_path / "victim"
    assert _eval(helpsteer2_dir, out, "--target", "high").returncode == 0
    victim.mkdir()
    (victim / "high.json").write_text("precious\n")
    (victim / "notes.txt").write_text("mine\n")
    for f in (out / "input_output").iterdir():
        f.unlink()
    (out / "input_output").rmdir()
    (out / "input_output").symlink_to(victim)
    res = _eval(helpsteer2_dir, out, "--target", "high", *(["--overwrite"] if overwrite else []), limit=3)
    one_line_error(res, "input_output is a link")
    assert (victim / "high.json").read_text() == "precious\n" and (victim / "notes.txt").read_text() == "mine\n"


def test_a_link_planted_as_a_target_file_is_replaced_never_followed(helpsteer2_dir, tmp_path):
    out, victim = tmp_path / "run", tmp_path / "victim.json"
    assert _eval(helpsteer2_dir, out, "--target", "high").returncode == 0
    victim.write_text("precious\n")
    (out / "input_output" / "high.json").unlink()
    (out / "input_output" / "high.json").symlink_to(victim)
    assert _eval(helpsteer2_dir, out, "--target", "high", limit=3).returncode == 0
    assert victim.read_text() == "precious\n"
    written = out / "input_output" / "high.json"
    assert not written.is_symlink() and len(json.loads(written.read_text())) == 3


def test_overwrite_removes_only_what_a_run_wrote(helpsteer2_dir, tmp_path):
    out = tmp_path / "run"
    assert _eval(helpsteer2_dir, out, "--target", "high", "--target", "low").returncode == 0
    folder = out / "input_output"
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "mine.json").write_text(json.dumps({"not": "a run's output"}))
    (folder / "list.json").write_text(json.dumps([1, 2, 3]))
    assert _eval(helpsteer2_dir, out, "--target", "high", "--overwrite").returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["high.json", "list.json", "mine.json", "notes.txt"]
    assert (folder / "notes.txt").read_text() == "my notes\n"


def test_two_targets_whose_names_would_share_a_file_get_two(helpsteer2_dir, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"name": "x y", "values": {"helpfulness": 1.0}}))
    second.write_text(json.dumps({"name": "x_y-887fcea6a803", "values": {"helpfulness": 0.0}}))
    out = tmp_path / "run"
    res = _eval(helpsteer2_dir, out, "--target", str(first), "--target", str(second), limit=4)
    assert res.returncode == 0, res.stderr
    files = sorted((out / "input_output").iterdir())
    assert len(files) == 2
    chosen = [[r["output"]["selected_response_index"] for r in json.loads(f.read_text())] for f in files]
    assert chosen[0] != chosen[1]  # each target's own choices, neither overwritten by the other


def test_file_names_of_labels_never_collide_even_folding_case():
    from pluralign.support.names import file_stem

    labels = ["x y", "x_y-887fcea6a803", "High", "high", "HIGH", "a/b", "a_b", "a_b-c14cddc033f6", "..", ".", "é",
              "e", "target_high", "name", "name-5ec1f7e700f3", "x" * 150, "x" * 151]  # fmt: skip
    labels.append(file_stem("x y"))
    stems = [file_stem(label) for label in dict.fromkeys(labels)]
    assert len({s.lower() for s in stems}) == len(stems)
    assert all("/" not in s and not s.startswith(".") and len(s) <= 100 for s in stems)
    assert file_stem("target_high") == "target_high" and file_stem("3attributes_target09") == "3attributes_target09"


# ---- the run browser: nothing below --runs through a link --------------------------------------


def test_the_run_browser_never_serves_a_file_through_a_link_below_runs(helpsteer2_dir, tmp_path):
    from test_service_inprocess import service

    runs, outside = tmp_path / "runs", tmp_path / "outside"
    assert _eval(helpsteer2_dir, runs / "good", "--target", "high").returncode == 0
    assert _eval(helpsteer2_dir, runs / "linked", "--target", "high").returncode == 0
    assert _eval(helpsteer2_dir, outside / "run", "--target", "high").returncode == 0
    secret = [{"item": 0, "input": "TOPSECRET", "output": {}}]
    (outside / "io").mkdir()
    (outside / "io" / "high.json").write_text(json.dumps(secret))
    io = runs / "linked" / "input_output"
    for f in io.iterdir():
        f.unlink()
    io.rmdir()
    io.symlink_to(outside / "io")
    (runs / "alias").symlink_to(outside / "run")  # a run folder that is itself a link
    with service(tmp_path, runs_dir=runs) as client:
        assert client.get("/v1/runs/good").status_code == 200
        res = client.get("/v1/runs/linked")
        assert res.status_code == 500 and "input_output is a link" in res.text and "TOPSECRET" not in res.text
        assert str(tmp_path) not in res.text
        assert client.get("/v1/runs/alias").status_code == 404
        names = {r["name"] for r in client.get("/v1/runs").json()}
        assert names == {"good", "linked"}


# ---- the prefix store: only regular files, never more than they hold ------------------------------


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "link", "folder", "huge-header"])
def test_a_prefix_entry_that_is_not_a_regular_file_of_ours_is_skipped(tmp_path, caplog, kind):
    from pluralign.prediction.judges.prefixes import SUFFIX, PrefixStore, prefix_key

    store = PrefixStore("model-x", tmp_path / "prefixes")
    store.put([1, 2, 3], b"state-bytes")
    tokens = [4, 5, 6]
    path = tmp_path / "prefixes" / (prefix_key("model-x", tokens).hex() + SUFFIX)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "link":
        good = tmp_path / "prefixes" / (prefix_key("model-x", [1, 2, 3]).hex() + SUFFIX)
        path.symlink_to(good)
    elif kind == "folder":
        path.mkdir()
    else:  # a header that claims 2**62 bytes
        from pluralign.prediction.judges.prefixes import _HEADER, FORMAT, MAGIC

        path.write_bytes(_HEADER.pack(MAGIC, FORMAT, prefix_key("model-x", tokens), 3, 2**62, b"\0" * 32) + b"xx")
    found: list = []
    worker = threading.Thread(target=lambda: found.append(PrefixStore("model-x", tmp_path / "prefixes").get(tokens)))
    with caplog.at_level(logging.WARNING, logger="pluralign.prediction.judges"):
        worker.start()
        worker.join(20)
    assert not worker.is_alive(), "reading the prefix store hung"
    assert found == [None]
    assert PrefixStore("model-x", tmp_path / "prefixes").get([1, 2, 3]) == b"state-bytes"


# ---- pipes, links and other programs' files named on the command line -----------------------------


def test_batch_import_of_a_pipe_does_not_hang(tmp_path):
    fifo = tmp_path / "results.jsonl"
    os.mkfifo(fifo)
    started = time.monotonic()
    res = run_cli("batch", "import", str(fifo), "--cache", str(tmp_path / "c.sqlite"), timeout=60)
    assert time.monotonic() - started < 60 and "Traceback" not in res.stderr, res.stderr
    assert "0 result lines" in res.stdout or res.returncode == 2, (res.stdout, res.stderr)


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_a_cache_that_is_not_a_regular_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "cache.sqlite"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        JudgementCache(tmp_path / "real.sqlite").close()
        path.symlink_to(tmp_path / "real.sqlite")
    else:
        path.mkdir()
    for args in (("cache", "stats", "--cache", str(path)), ("cache", "clear", "--cache", str(path))):
        res = run_cli(*args, timeout=60)
        one_line_error(res, str(path))


def _plant(path: Path, kind: str) -> Path:
    """``path`` made a file that never ends or never answers: /dev/zero through a link, a pipe
    with no writer, or a folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    return path


CHOICE = ("--question", "q", "--response", "a", "--response", "b")


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder"])
@pytest.mark.parametrize(
    "door",
    ["input", "target", "attributes", "calibration", "benchmark", "prompts", "batch-results", "mic", "reference"],
)
def test_every_file_named_on_the_command_line_is_read_through_one_door(tmp_path, door, kind):
    """A device (``/dev/zero`` never ends: read whole it fills memory), a pipe nobody writes or a
    folder, named wherever a command reads a file, is refused in one line at once (a pipe may
    read as empty, and is then refused as not what was asked for)."""
    planted = tmp_path / "in"
    if door == "input":
        args = ["choose", "--method", "random", "--target", '{"care": 1}', "--input", str(_plant(planted, kind))]
    elif door == "target":
        args = ["choose", "--method", "random", *CHOICE, "--target", str(_plant(planted / "t.json", kind))]
    elif door == "attributes":
        f = _plant(planted / "a.json", kind)
        args = ["choose", "--method", "random", *CHOICE, "--target", '{"care": 1}', "--attributes-file", str(f)]
    elif door == "calibration":
        f = _plant(planted / "c.json", kind)
        args = ["choose", "--method", "random", *CHOICE, "--target", '{"care": 1}', "--calibration", str(f)]
    elif door == "benchmark":
        _plant(planted / "eval.json", kind)
        args = ["eval", "--method", "oracle", "--benchmark", str(planted), "--out", str(tmp_path / "run")]
    elif door == "prompts":
        _plant(planted / "comparative_system.j2", kind)
        args = ["choose", "--method", "spm-zeroshot", "--model", "smollm2-135m", *CHOICE]
        args += ["--target", '{"care": 1}', "--prompts", str(planted)]
    elif door == "batch-results":
        args = ["batch", "import", str(_plant(planted / "r.jsonl", kind)), "--cache", str(tmp_path / "c.sqlite")]
    elif door == "mic":
        args = ["data", "mic", str(_plant(planted / "MIC.csv", kind)), "--out", str(tmp_path / "mic")]
    else:
        f = _plant(planted / "input_output.json", kind)
        args = ["metrics", str(f), "--target", '{"care": 1}']
    started = time.monotonic()
    res = run_cli(*args, timeout=120)
    assert time.monotonic() - started < 120
    if kind == "fifo" and res.returncode == 0:  # read as empty: nothing to import or choose
        assert "Traceback" not in res.stderr
        return
    one_line_error(res)
    if kind == "dev-zero":
        assert "is a device, not a file" in res.stderr, res.stderr
    assert not (tmp_path / "mic").exists() and not (tmp_path / "run" / "results.json").exists()


def test_a_file_larger_than_the_read_limit_is_refused_not_read(tmp_path):
    """The same door bounds what it reads: a regular file or a pipe that writes on past the limit."""
    from pluralign.support.errors import TooLargeError
    from pluralign.support.files import read_text

    big = tmp_path / "big.json"
    big.write_text("x" * 101)
    with pytest.raises(TooLargeError, match=r"big.json is larger than the limit of 100 bytes"):
        read_text(big, "target file", limit=100)
    assert read_text(big, "target file", limit=101) == "x" * 101
    pipe = tmp_path / "endless"
    os.mkfifo(pipe)
    # a writer before the reader opens (a pipe with none reads as empty, by design): opened
    # read-write, so neither side waits for the other, and it writes three times the limit
    writing = os.open(pipe, os.O_RDWR)

    def write_on(left: int = 3_000_000) -> None:
        while left > 0:
            left -= os.write(writing, b"y" * min(65536, left))

    writer = threading.Thread(target=write_on, daemon=True)
    writer.start()
    with pytest.raises(TooLargeError, match="endless is larger than the limit of 1,000,000 bytes"):
        read_text(pipe, "input file", limit=1_000_000)
    drain = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # let the writer finish
    while writer.is_alive():
        try:
            os.read(drain, 1 << 16)
        except BlockingIOError:
            time.sleep(0.01)
    os.close(drain)
    os.close(writing)


def test_a_regular_file_that_holds_more_than_its_size_says_is_read_only_to_the_limit():
    """A regular file's size is checked before it is read, but a file can grow after that check
    (or, like /proc's, say 0 and hold more): the door reads one byte past the limit, no more."""
    from pluralign.support.errors import TooLargeError
    from pluralign.support.files import read_bytes

    maps = Path("/proc/self/maps")
    assert maps.stat().st_size == 0 and len(maps.read_bytes()) > 200
    with pytest.raises(TooLargeError, match=r"maps is larger than the limit of 200 bytes"):
        read_bytes(maps, "input file", limit=200)


def _unwritable(path: Path, kind: str) -> Path:
    """``path`` made something an atomic write must not replace: a pipe or a socket (a device
    needs root to make; ``replaceable`` is checked on /dev/null itself below)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        import socket

        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.close()
    return path


def test_no_output_replaces_a_device():
    from pluralign.support.errors import InputError
    from pluralign.support.files import replaceable

    for device in ("/dev/null", "/dev/zero"):
        with pytest.raises(InputError, match="is not a regular file"):
            replaceable(device)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
@pytest.mark.parametrize("door", ["calibrate", "report", "targets", "mic"])
def test_an_output_that_is_a_pipe_or_socket_is_refused_and_nothing_is_written(helpsteer2_dir, tmp_path, door, kind):
    """Every command that writes files refuses a pipe or a socket under one of their names (the
    atomic rename would put a file in its place; as root, ``--out /dev/null`` replaced the
    device), and checks all its files before it writes the first."""
    out = tmp_path / "out"
    if door in ("calibrate", "report"):
        run = tmp_path / "run"
        assert _eval(helpsteer2_dir, run, "--target", "high", limit=12).returncode == 0
    if door == "calibrate":
        args = ["calibrate", str(run), "--out", str(_unwritable(out / "cal.json", kind))]
    elif door == "report":
        _unwritable(out / "radar.png", kind)  # the last it would write
        args = ["report", str(run), "--out", str(out)]
    elif door == "targets":
        _unwritable(out / "2attributes_target02.json", kind)
        args = ["targets", "draw", "--n-attributes", "2", "--count", "3", "--out", str(out)]
    else:
        from test_data import CARE, write_mic

        rows = [(f"Q{i}", a, "Be kind.", CARE, str(i % 3)) for i in range(40) for a in ("x", "y")]
        _unwritable(out / "eval.json", kind)
        args = ["data", "mic", str(write_mic(tmp_path / "MIC.csv", rows)), "--out", str(out)]
    before = sorted(p.name for p in out.iterdir())
    one_line_error(run_cli(*args, timeout=120), "is not a regular file")
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written beside it


@pytest.mark.parametrize("door", ["report", "targets", "mic", "eval", "batch-dir"])
def test_an_output_folder_that_is_a_file_is_refused_and_left_alone(helpsteer2_dir, tmp_path, door):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    if door == "report":
        run = tmp_path / "run"
        assert _eval(helpsteer2_dir, run, "--target", "high").returncode == 0
        args = ["report", str(run)]
    elif door == "targets":
        args = ["targets", "draw", "--n-attributes", "1"]
    elif door == "mic":
        args = ["data", "mic", str(tmp_path / "MIC.csv")]
    elif door == "batch-dir":
        args = ["eval", "--benchmark", str(helpsteer2_dir), "--method", "spm-zeroshot", "--model", "smollm2"]
        args += ["--backend", "batch", "--batch-dir", str(taken), "--out", str(tmp_path / "run")]
        one_line_error(run_cli(*args), f"--batch-dir {taken} is a file, not a folder")
        assert taken.read_text() == "mine"
        return
    else:
        args = [*EVAL, "--benchmark", str(helpsteer2_dir), "--target", "high"]
    one_line_error(run_cli(*args, "--out", str(taken)), f"--out {taken} is a file, not a folder")
    assert taken.read_text() == "mine"


def test_an_output_named_through_a_link_replaces_the_link_not_what_it_points_to(helpsteer2_dir, tmp_path):
    run, victim, link = tmp_path / "run", tmp_path / "victim.json", tmp_path / "cal.json"
    assert _eval(helpsteer2_dir, run, "--target", "high", limit=12).returncode == 0
    victim.write_text("keep")
    link.symlink_to(victim)
    assert run_cli("calibrate", str(run), "--out", str(link)).returncode == 0
    assert victim.read_text() == "keep" and not link.is_symlink() and json.loads(link.read_text())["attributes"]


def _foreign_db(path: Path) -> str:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
    db.execute("INSERT INTO accounts (owner) VALUES ('someone')")
    db.commit()
    db.close()
    return _digest(path)


def test_serve_never_adds_its_tables_to_another_programs_database(tmp_path):
    other = tmp_path / "other_program.sqlite"
    before = _foreign_db(other)
    res = run_cli("serve", "--method", "random", "--port", "9", "--db", str(other), timeout=120)
    one_line_error(res, "another program")
    assert _digest(other) == before and not Path(f"{other}-wal").exists()


def test_a_named_output_is_used_as_given():
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from common import output

    seven, seventy_two = Path("X/evidence-qwen2.5-7b"), Path("X/evidence-qwen2.5-72b")
    assert output(seven, ".md") == Path("X/evidence-qwen2.5-7b.md") != output(seventy_two, ".md")
    assert output(Path("bench/results/evidence"), ".json") == Path("bench/results/evidence.json")
    assert output(Path("r.md"), ".md") == Path("r.md")


@pytest.mark.parametrize("args", [("--step", "0"), ("--items", "-5"), ("--items", "x"), ("--samples", "0")])
def test_the_evidence_study_refuses_counts_that_mean_nothing(args):
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "evidence.py"), *args, "--report-only"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr and args[0] in res.stderr, res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("evidence.py", "--report-only", "--out", ""),
        ("evidence.py", "--report-only", "--runs", ""),
        ("pack_runs.py", ""),
        ("calibration_study.py", "report", "--source", ""),
    ],
    ids="evidence-out evidence-runs pack calibration-source".split(),
)
def test_a_benchmark_script_refuses_an_empty_path(tmp_path, args):
    """The scripts' one path type (``bench/common.named_path``): an empty path is not the current folder."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 2 and "is empty" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert list(tmp_path.iterdir()) == []


def test_one_writer_of_reasonings_per_benchmark(helpsteer2_dir, tmp_path):
    from pluralign.evaluation.reasonings import PROGRESS
    from pluralign.support.errors import InputError
    from pluralign.support.files import exclusive

    bench = tmp_path / "bench"
    bench.mkdir()
    train = json.loads((helpsteer2_dir / "train.json").read_text())[:3]
    (bench / "train.json").write_text(json.dumps(train))
    before = _digest(bench / "train.json")
    with exclusive(bench / PROGRESS, InputError("held by the test")):
        res = run_cli(
            "data", "reasonings", "--benchmark", str(bench), "--backend", "openai", "--base-url",
            "http://127.0.0.1:9/v1", "--model", "m", "--no-cache", timeout=120,
        )  # fmt: skip
    one_line_error(res, "another pluralign process is writing reasonings")
    assert _digest(bench / "train.json") == before


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_a_pipe_or_socket_planted_in_a_folder_of_ours_is_refused_not_replaced(tmp_path, kind):
    """The writer of pluralign's own folders (runs, saved profiles) replaces a file or a link by
    rename, but never a pipe or a socket someone planted under the name: refused, left as it was."""
    from pluralign.people.saved_profiles import SavedProfiles
    from pluralign.support.errors import InputError
    from pluralign.support.folders import write_bytes_under, write_json_under

    planted = _unwritable(tmp_path / "own" / "deep" / "results.json", kind)
    for write in (lambda: write_bytes_under(tmp_path / "own", "deep/results.json", b"{}"),
                  lambda: write_json_under(tmp_path / "own", Path("deep") / "results.json", {})):  # fmt: skip
        with pytest.raises(InputError, match=r"results\.json is not a regular file"):
            write()
    assert stat.S_IFMT(planted.lstat().st_mode) in (stat.S_IFIFO, stat.S_IFSOCK)
    assert sorted(p.name for p in planted.parent.iterdir()) == ["results.json"]  # no temporary file left
    _unwritable(tmp_path / "profiles" / "mine.json", kind)
    with pytest.raises(InputError, match=r"^name: <profiles>/mine.json is not a regular file"):
        SavedProfiles(tmp_path / "profiles").save("default", "mine", {"care": 1.0})
    write_bytes_under(tmp_path / "own", "deep/other.json", b"{}")  # a new name is written as before
    assert (tmp_path / "own" / "deep" / "other.json").read_bytes() == b"{}"


def test_a_run_resumed_over_a_pipe_planted_as_its_results_refuses_in_one_line(helpsteer2_dir, tmp_path):
    out = tmp_path / "run"
    assert _eval(helpsteer2_dir, out, "--target", "high").returncode == 0
    (out / "results.json").unlink()
    os.mkfifo(out / "results.json")
    res = _eval(helpsteer2_dir, out, "--target", "high", limit=3)
    one_line_error(res, "results.json is not a regular file")
    assert stat.S_ISFIFO((out / "results.json").lstat().st_mode)


@pytest.mark.slow  # loads the embedding model (~15 s of a worker)
def test_the_embedding_cache_goes_through_the_door_of_our_own_folders(tmp_path, monkeypatch, caplog):
    """A pipe under a cached embedding's name once hung ``np.load``; a link was read through and
    its temporary name written through. Now: never followed, the vectors computed again, the
    cache replaced where it may be (a file, a link) and left where it may not (a pipe)."""
    import numpy as np

    from pluralign.prediction import embeddings

    monkeypatch.setenv("PLURALIGN_HOME", str(tmp_path / "home"))
    texts = ["water the plants", "say no politely"]
    first = embeddings.embed(texts)
    [cached] = (tmp_path / "home" / "embeddings").iterdir()
    assert np.array_equal(np.load(cached, allow_pickle=False), first)
    outside = tmp_path / "outside.npy"
    np.save(outside, np.ones((2, 384), dtype=np.float32))
    for kind in ("fifo", "link", "garbage"):
        cached.unlink()
        if kind == "fifo":
            os.mkfifo(cached)
        elif kind == "link":
            cached.symlink_to(outside)
        else:
            cached.write_bytes(b"\x93NUMPY not really")
        found: list = []
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pluralign.prediction.embeddings"):
            worker = threading.Thread(target=lambda out=found: out.append(embeddings.embed(texts)), daemon=True)
            worker.start()
            worker.join(120)
        assert not worker.is_alive(), f"reading the embedding cache hung ({kind})"
        assert np.allclose(found[0], first, atol=1e-5) and "embedding cache" in caplog.text, kind
        assert np.array_equal(np.load(outside), np.ones((2, 384), dtype=np.float32))
        if kind == "fifo":
            assert stat.S_ISFIFO(cached.lstat().st_mode)
        else:
            assert cached.is_file() and not cached.is_symlink(), kind
            assert np.allclose(np.load(cached, allow_pickle=False), first, atol=1e-5), kind


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "link", "garbage"])
def test_the_model_digest_memo_goes_through_the_door_of_our_own_folders(tmp_path, monkeypatch, kind):
    """The memo of model digests under $PLURALIGN_HOME was read with ``read_text``: a pipe there
    hung every judge's start, a link to /dev/zero read until memory ran out."""
    from pluralign.prediction.weights import DIGESTS, file_digest

    monkeypatch.setenv("PLURALIGN_HOME", str(tmp_path / "home"))
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF weights of mine")
    expected = hashlib.sha256(model.read_bytes()).hexdigest()
    outside = tmp_path / "outside.json"
    outside.write_text('{"planted": "x"}')
    memo = tmp_path / "home" / DIGESTS
    memo.parent.mkdir()
    if kind in ("fifo", "dev-zero"):
        _plant(memo, kind)
    elif kind == "link":
        memo.symlink_to(outside)
    else:
        memo.write_text("[not a memo")
    found: list = []
    worker = threading.Thread(target=lambda: found.append(file_digest(model)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "reading the digest memo hung"
    assert found == [expected] and outside.read_text() == '{"planted": "x"}'
    if kind == "fifo":
        assert stat.S_ISFIFO(memo.lstat().st_mode)
    else:  # replaced by the memo (a link by the file, never written through)
        assert not memo.is_symlink() and expected in memo.read_text()
