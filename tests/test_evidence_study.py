"""bench/evidence.py resumes without losing what its run folders hold, and its report rows
stand on their own data (random and oracle: no model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _study(helpsteer2_dir: Path, runs: Path, out: Path, methods: str, *extra: str) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "evidence.py"), "--benchmark", str(helpsteer2_dir)]
    cmd += ["--runs", str(runs), "--out", str(out), "--methods", methods, "--step", "5", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return {row["method"]: row for row in json.loads(out.with_suffix(".json").read_text())["rows"]}


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


def test_a_rows_interval_does_not_depend_on_the_other_rows(helpsteer2_dir: Path, tmp_path: Path):
    runs = tmp_path / "runs"
    alone = _study(helpsteer2_dir, runs, tmp_path / "a", "random", "--items", "10")
    both = _study(helpsteer2_dir, runs, tmp_path / "b", "oracle,random", "--items", "10")
    assert both["oracle"]["accuracy"] == 100.0
    assert both["random"]["ci95"] == alone["random"]["ci95"]
    assert both["random"]["ci95"][0] < both["random"]["accuracy"] < both["random"]["ci95"][1]


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
