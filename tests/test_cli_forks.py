"""The fast tier's forked CLI (``cli_forks.py``) behaves as ``python -m pluralign`` does: the
same output, errors, exit status, working folder and environment."""

from __future__ import annotations

import json
import subprocess

import pytest

from support import CHOOSE_ARGS, run_cli


def _both(monkeypatch: pytest.MonkeyPatch, *args: str, **kw) -> tuple[subprocess.CompletedProcess, ...]:
    monkeypatch.setenv("PLURALIGN_TEST_FORK", "1")
    forked = run_cli(*args, **kw)
    monkeypatch.setenv("PLURALIGN_TEST_FORK", "0")
    return forked, run_cli(*args, **kw)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["choose", "--bogus"],
        [*CHOOSE_ARGS, "--method", "random", "--seed", "3"],
        [*CHOOSE_ARGS, "--method", "random", "--json"],
        ["choose", "--target", "{not json", "--question", "q", "--response", "a", "--response", "b"],
    ],
)
def test_a_forked_call_prints_and_exits_as_a_fresh_interpreter_does(monkeypatch, args):
    forked, fresh = _both(monkeypatch, *args)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_a_forked_call_has_its_own_folder_and_environment(monkeypatch, tmp_path, helpsteer2_dir, targets_dir):
    """A relative --out lands in the call's folder; the benchmark comes from the call's environment."""
    target = targets_dir / "helpsteer2" / "target_high.json"
    env = {"PLURALIGN_BENCHMARK": str(helpsteer2_dir)}
    monkeypatch.setenv("PLURALIGN_TEST_FORK", "1")
    forked = run_cli("eval", "--method", "random", "--target", str(target), "--out", "forked", cwd=tmp_path, env=env)
    monkeypatch.setenv("PLURALIGN_TEST_FORK", "0")
    fresh = run_cli("eval", "--method", "random", "--target", str(target), "--out", "fresh", cwd=tmp_path, env=env)
    assert forked.returncode == fresh.returncode == 0, forked.stderr
    results = [json.loads((tmp_path / name / "results.json").read_text()) for name in ("forked", "fresh")]
    assert results[0]["benchmark"] == str(helpsteer2_dir) and results[0]["n_items"] > 100
    assert (results[0]["mean_accuracy"], results[0]["targets"]) == (results[1]["mean_accuracy"], results[1]["targets"])
