"""`pluralign compare`: paired statistics of two real runs on the same items (oracle against
random, whose figures can be checked by hand), and the runs it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from support import one_line_error, run_cli


@pytest.fixture(scope="module")
def runs(helpsteer2_dir: Path, tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("compare")
    for method in ("oracle", "random"):
        res = run_cli("eval", "--benchmark", str(helpsteer2_dir), "--method", method, "--limit", "30",
                      "--target", "high", "--target", "low", "--out", str(root / method))  # fmt: skip
        assert res.returncode == 0, res.stderr
    other = root / "other-bench"
    other.mkdir()
    items = json.loads((helpsteer2_dir / "eval.json").read_text())[30:60]
    (other / "eval.json").write_text(json.dumps(items))
    res = run_cli("eval", "--benchmark", str(other), "--method", "random", "--limit", "30", "--target", "high",
                  "--out", str(root / "random-elsewhere"))  # fmt: skip
    assert res.returncode == 0, res.stderr
    return root / "oracle", root / "random", root / "random-elsewhere"


def test_oracle_against_random_gives_the_figures_a_hand_count_gives(runs):
    from pluralign.evaluation.runs import RunDir
    from pluralign.evaluation.statistics import compare_runs

    oracle, random, _ = runs
    result = compare_runs(str(oracle), str(random))
    decisions = [d for d in RunDir(random).decisions() if not d.skipped]
    right = {t: [d.chosen in d.correct for d in decisions if d.target == t] for t in ("high", "low")}
    expected = float(np.mean([100 * np.mean(v) for v in right.values()]))
    assert result.accuracy_a == 100.0 and result.accuracy_b == pytest.approx(expected, abs=0.01)
    c = result.comparison
    assert c.difference == pytest.approx(100 - expected, abs=0.01)
    assert c.only_b_right == 0 and c.only_a_right == sum(not ok for v in right.values() for ok in v)
    assert c.ci95[0] <= c.difference <= c.ci95[1] and c.ci95[0] > 0
    assert c.mcnemar_p < 0.001 and c.sign_flip_p < 0.01 and c.decisions == len(decisions)
    assert compare_runs(str(oracle), str(random)) == result  # seeded: the same figures again
    flipped = compare_runs(str(random), str(oracle)).comparison
    assert flipped.difference == -c.difference and flipped.only_a_right == c.only_b_right


def test_compare_prints_a_table_and_json(runs):
    oracle, random, _ = runs
    res = run_cli("compare", str(oracle), str(random), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["accuracy_a"] == 100.0
    res = run_cli("compare", str(oracle), str(random))
    assert res.returncode == 0 and "McNemar p" in res.stdout and "sign-flip p" in res.stdout, res.stdout


def test_runs_on_different_items_are_refused_in_one_line(runs, tmp_path: Path):
    oracle, _, elsewhere = runs
    one_line_error(run_cli("compare", str(oracle), str(elsewhere)), "different benchmarks")
    one_line_error(run_cli("compare", str(oracle), str(tmp_path)), "results.json")
