"""The prefix store: states kept in memory (bounded, least recently used first out) and on disk
(bounded, atomic, checked on reading), and only its own files ever removed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pluralign.prediction.judges import prefixes
from pluralign.prediction.judges.prefixes import PrefixStore

TOKENS = list(range(100, 164))


def _store(folder: Path | None, **kw) -> PrefixStore:
    return PrefixStore("model-a; build-1", folder, **kw)


def test_a_state_comes_back_from_memory_and_from_disk_in_a_new_process(tmp_path: Path):
    first = _store(tmp_path)
    assert first.get(TOKENS) is None
    first.put(TOKENS, b"state-bytes" * 100)
    assert first.get(TOKENS) == b"state-bytes" * 100
    assert (first.stats.misses, first.stats.memory_hits, first.stats.stored) == (1, 1, 1)
    second = _store(tmp_path)  # as a second `pluralign choose` would: nothing in memory
    assert second.get(TOKENS) == b"state-bytes" * 100 and second.stats.disk_hits == 1
    assert second.get(TOKENS) and second.stats.memory_hits == 1  # now kept in memory too
    assert prefixes.disk_stats(tmp_path).hits == 3


def test_the_key_is_the_model_the_build_and_the_exact_tokens(tmp_path: Path):
    _store(tmp_path).put(TOKENS, b"x" * 10)
    assert PrefixStore("model-b; build-1", tmp_path).get(TOKENS) is None
    assert PrefixStore("model-a; build-2", tmp_path).get(TOKENS) is None
    assert _store(tmp_path).get(TOKENS[:-1]) is None
    assert _store(tmp_path).get([*TOKENS[:-1], 7]) is None


def test_memory_is_bounded_least_recently_used_first_out(tmp_path: Path):
    store = _store(None, memory_bytes=100)
    a, b, c = [[i] * 40 for i in (1, 2, 3)]
    store.put(a, b"a" * 40)
    store.put(b, b"b" * 40)
    assert store.get(a)  # a is now the most recently used
    store.put(c, b"c" * 40)
    assert store.get(b) is None and store.get(a) and store.get(c)
    store.put([9] * 40, b"z" * 500)  # larger than the whole budget: never held
    assert store.memory_entries == 2


def test_the_disk_is_bounded_and_only_our_files_are_ever_removed(tmp_path: Path):
    notes = tmp_path / "notes.prefix"
    notes.write_text("my own notes, not a state")
    other = tmp_path / "data.bin"
    other.write_bytes(b"\x00" * 5000)
    store = _store(tmp_path, disk_bytes=3000)
    for i in range(5):
        store.put([i] * 40, bytes([i]) * 1000)
    ours = prefixes.entries(tmp_path)
    assert len(ours) == 2 and sum(p.stat().st_size for p in ours) <= 3000
    assert notes.read_text() == "my own notes, not a state" and other.read_bytes() == b"\x00" * 5000
    assert prefixes.clear(tmp_path) == 2
    assert prefixes.entries(tmp_path) == [] and notes.exists() and other.exists()


@pytest.mark.parametrize("kind", ["link", "foreign", "fifo", "folder"])
def test_the_hit_count_never_writes_or_reads_a_file_that_is_not_ours(tmp_path: Path, kind: str):
    import os

    outside = tmp_path / "outside.json"
    outside.write_text('{"hits": 41}')
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    hits = store_dir / prefixes.HITS_FILE
    if kind == "link":
        hits.symlink_to(outside)
    elif kind == "foreign":
        hits.write_text("my notes, named hits.json by chance\n")
    elif kind == "fifo":
        os.mkfifo(hits)
    else:
        hits.mkdir()
    store = _store(store_dir)
    store.put(TOKENS, b"s" * 100)
    assert _store(store_dir).get(TOKENS) == b"s" * 100  # a disk hit: the state is still served
    assert outside.read_text() == '{"hits": 41}'  # never written through the link
    assert prefixes.disk_stats(store_dir).hits == 0  # ... nor read through it
    if kind == "foreign":
        assert hits.read_text() == "my notes, named hits.json by chance\n"
    assert prefixes.clear(store_dir) == 1 and outside.exists() and (hits.is_symlink() or hits.exists())


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda raw: raw[:20], "is truncated"),
        (lambda raw: raw[:-5], "is truncated"),
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "is corrupt"),
        (lambda raw: b"GGUF" + raw[4:], "is not a pluralign prefix state"),
        (lambda raw: b"", "is truncated"),
    ],
    ids=["header", "payload", "flipped-bit", "foreign", "empty"],
)
def test_a_damaged_entry_is_ignored_with_a_warning_and_replaced(tmp_path: Path, caplog, damage, said: str):
    _store(tmp_path).put(TOKENS, b"good" * 50)
    (path,) = tmp_path.glob("*.prefix")
    path.write_bytes(damage(path.read_bytes()))
    store = _store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pluralign.prediction.judges"):
        assert store.get(TOKENS) is None
    assert said in caplog.text and "computing the prefix again" in caplog.text
    _store(tmp_path).put(TOKENS, b"fresh" * 50)
    assert _store(tmp_path).get(TOKENS) == b"fresh" * 50


def test_a_state_filed_under_another_key_is_not_trusted(tmp_path: Path, caplog):
    store = _store(tmp_path)
    store.put(TOKENS, b"a" * 30)
    store.put(TOKENS[:40], b"b" * 30)
    first, second = sorted(tmp_path.glob("*.prefix"), key=lambda p: p.stat().st_size)
    first.write_bytes(second.read_bytes())  # a file renamed or copied over another
    with caplog.at_level(logging.WARNING, logger="pluralign.prediction.judges"):
        results = [_store(tmp_path).get(TOKENS), _store(tmp_path).get(TOKENS[:40])]
    assert results.count(None) >= 1 and "belongs to another prefix" in caplog.text


def test_an_unwritable_store_costs_speed_never_a_decision(tmp_path: Path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = _store(blocker / "prefixes")
    with caplog.at_level(logging.WARNING, logger="pluralign.prediction.judges"):
        store.put(TOKENS, b"s" * 10)
    assert store.get(TOKENS) == b"s" * 10  # still kept in memory
    assert "could not write" in caplog.text and blocker.read_text() == "x"


def test_cache_stats_and_clear_report_the_prefix_store(tmp_path: Path, cli):
    folder = tmp_path / "prefixes"
    _store(folder).put(TOKENS, b"s" * 1000)
    (folder / "keep.txt").write_text("mine")
    cache = tmp_path / "c.sqlite"
    res = cli("cache", "stats", "--cache", str(cache), "--prefixes", str(folder))
    assert res.returncode == 0 and f"{folder}: 1 prefix states" in res.stdout, res.stdout
    res = cli("cache", "clear", "--cache", str(cache), "--prefixes", str(folder))
    assert res.returncode == 0 and f"cleared 1 prefix states from {folder}" in res.stdout
    assert (folder / "keep.txt").read_text() == "mine" and prefixes.entries(folder) == []
