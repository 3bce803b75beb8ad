"""bench/evidence.py resumes without losing what its run folders hold, its report rows stand on
their own data (random and oracle: no model), and it runs against a real server judge."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _study(helpsteer2_dir: Path, runs: Path, out: Path, methods: str, *extra: str) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "evidence.py"), "--benchmark", str(helpsteer2_dir)]
    cmd += ["--runs", str(runs), "--out", str(out), "--methods", methods, "--step", "5", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return {row["method"]: row for row in json.loads(out.with_suffix(".json").read_text())["rows"]}


@pytest.mark.slow  # over 9 s of a fast-tier worker (docs/contributing.md)
def test_a_resumed_study_never_rewrites_a_folder_with_fewer_items(helpsteer2_dir: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    rows = _study(helpsteer2_dir, runs, tmp_path / "a", "random", "--items", "10")
    assert rows["random"]["items"] == 10
    decisions = runs / "random" / "decisions.jsonl"
    before = (decisions.read_bytes(), decisions.stat().st_mtime_ns)
    # The resumed study climbs its rounds again from 5 items: none of them may touch a folder
    # that already holds 10, or a stop inside the climb would leave a report of 5.
    rows = _study(helpsteer2_dir, runs, tmp_path / "b", "random", "--items", "10")
    assert (decisions.read_bytes(), decisions.stat().st_mtime_ns) == before
    assert rows["random"]["items"] == 10
    rows = _study(helpsteer2_dir, runs, tmp_path / "c", "random", "--items", "15")
    assert rows["random"]["items"] == 15


@pytest.mark.slow  # over 9 s of a fast-tier worker (docs/contributing.md)
def test_a_rows_interval_does_not_depend_on_the_other_rows(helpsteer2_dir: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    alone = _study(helpsteer2_dir, runs, tmp_path / "a", "random", "--items", "10")
    both = _study(helpsteer2_dir, runs, tmp_path / "b", "oracle,random", "--items", "10")
    assert both["oracle"]["accuracy"] == 100.0
    assert both["random"]["ci95"] == alone["random"]["ci95"]
    assert both["random"]["ci95"][0] < both["random"]["accuracy"] < both["random"]["ci95"][1]


@pytest.mark.slow  # over 9 s of a fast-tier worker (docs/contributing.md)
def test_running_one_method_keeps_the_other_rows_in_the_report(helpsteer2_dir: Path, tmp_path: Path):
    """The report is rewritten by every run; a run of one method (regression after the rest,
    here oracle after random) must not leave a report without the others' rows."""
    runs = tmp_path / "runs"
    first = _study(helpsteer2_dir, runs, tmp_path / "a", "random", "--items", "10")
    later = _study(helpsteer2_dir, runs, tmp_path / "a", "oracle", "--items", "10")
    assert list(later) == ["random", "oracle"]  # the study's order, whatever was asked for
    assert later["random"] == first["random"]
    assert later["oracle"]["accuracy"] == 100.0
    only = _study(helpsteer2_dir, runs, tmp_path / "a", "random", "--items", "10", "--report-only")
    assert set(only) == {"random", "oracle"}


@pytest.mark.slow  # over 9 s of a fast-tier worker (docs/contributing.md)
def test_another_judge_must_name_its_own_folders(helpsteer2_dir: Path, tmp_path: Path):
    """The committed folders hold the default judge's study: a server judge is refused there
    with one line (before any model or server is touched), and nothing in them changes."""
    committed = ROOT / "bench" / "runs" / "evidence"
    before = sorted((p.relative_to(committed), p.stat().st_mtime_ns) for p in committed.rglob("*"))
    for extra in (
        ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1"],
        ["--model", "smollm2-135m"],
        ["--backend", "openai", "--runs", str(tmp_path / "runs")],  # --out still the committed report
        ["--samples", "3", "--temperature", "0.7"],  # the same judge, scored another way
        ["--example-max-chars", "300", "--out", str(tmp_path / "report")],
    ):
        cmd = [sys.executable, str(ROOT / "bench" / "evidence.py"), "--benchmark", str(helpsteer2_dir), *extra]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stderr[-2000:]
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
        assert "--runs and --out" in res.stderr and extra[0] in res.stderr and "Traceback" not in res.stderr
    assert sorted((p.relative_to(committed), p.stat().st_mtime_ns) for p in committed.rglob("*")) == before


def test_the_study_runs_against_a_server_and_never_judges_an_item_twice(
    helpsteer2_dir: Path, tmp_path: Path, llama_server: str
):
    """The documented way to repeat the study with a large judge: the same command with
    --backend openai --base-url, here against a real llama.cpp server with SmolLM2."""
    runs, out = tmp_path / "runs", tmp_path / "report"
    server = ["--backend", "openai", "--base-url", llama_server, "--model", "smollm2", "--items", "2"]
    server += ["--samples", "1", "--reference", "spm-zeroshot"]
    rows = _study(helpsteer2_dir, runs, out, "spm-zeroshot,random", *server)
    assert list(rows) == ["random", "spm-zeroshot"]
    identity = json.loads((runs / "spm-zeroshot" / "run.json").read_text())["identity"]["method"]
    assert (identity["backend"], identity["model"], identity["samples"]) == ("openai", "smollm2", 1)
    row = rows["spm-zeroshot"]
    assert row["llm_calls"] >= 2 * 5  # both items, all five attributes, one pass each, from the server
    assert row["items"] >= 1
    paired = rows["random"]["reference_minus_this"]  # the reference named by --reference
    assert paired["difference"] == pytest.approx(row["accuracy"] - rows["random"]["accuracy"], abs=0.02)
    judged = runs / "spm-zeroshot" / "assessments.jsonl"
    records = [json.loads(line) for line in judged.read_text().splitlines()]
    assert {r["item"] for r in records} == {0, 1}
    before = judged.read_bytes()
    again = _study(helpsteer2_dir, runs, out, "spm-zeroshot,random", *server)
    assert judged.read_bytes() == before  # resumed: nothing judged again
    assert again["spm-zeroshot"]["accuracy"] == row["accuracy"] or math.isnan(row["accuracy"])
