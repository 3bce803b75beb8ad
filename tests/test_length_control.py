"""Length control of a run: what a length rule explains, told apart from what a method adds."""

import json
import random
from pathlib import Path

import pytest

from pluralign.evaluation.length_control import adjusted_signal, logistic_fit


def _eval(cli, bench: Path, method: str, out: Path, *extra: str):
    res = cli("eval", "--benchmark", str(bench), "--method", method, "--limit", "120", "--out", str(out), *extra)
    assert res.returncode == 0, res.stderr
    return out


def _control(cli, run: Path, bench: Path) -> dict:
    res = cli("metrics", str(run), "--benchmark", str(bench), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["length_control"]


def test_the_length_baseline_is_its_own_length_rule_and_adds_no_signal(helpsteer2_dir: Path, tmp_path: Path, cli):
    control = _control(cli, _eval(cli, helpsteer2_dir, "length", tmp_path / "length"), helpsteer2_dir)
    for row in control["ordering"]:
        assert row["pairs"] > 0 and row["method"] == pytest.approx(row["longer_is_higher"], abs=1.0)
    for b in control["spread"]:
        assert b["method"] == b["length"]  # the same rule on the same decisions
    assert all(s["p_value"] is None or s["p_value"] > 0.05 for s in control["signal"])


def test_the_oracle_orders_every_pair_and_carries_signal_beyond_length(helpsteer2_dir: Path, tmp_path: Path, cli):
    control = _control(cli, _eval(cli, helpsteer2_dir, "oracle", tmp_path / "oracle"), helpsteer2_dir)
    assert all(row["method"] == 100.0 for row in control["ordering"])
    assert all(s["p_value"] is not None and s["p_value"] < 1e-6 for s in control["signal"])
    assert all(b["method"] == 100.0 for b in control["spread"] if b["decisions"])
    res = cli("metrics", str(tmp_path / "oracle"), "--benchmark", str(helpsteer2_dir))
    assert res.returncode == 0 and "longer is higher" in res.stdout and "length baseline" in res.stdout


def test_a_run_on_other_items_is_refused_in_one_line(helpsteer2_dir: Path, tmp_path: Path, cli):
    run = _eval(cli, helpsteer2_dir, "random", tmp_path / "random")
    other = tmp_path / "other"
    other.mkdir()
    items = json.loads((helpsteer2_dir / "eval.json").read_text())
    (other / "eval.json").write_text(json.dumps(items[:200]))
    (other / "train.json").write_text((helpsteer2_dir / "train.json").read_text())
    res = cli("metrics", str(run), "--benchmark", str(other))
    assert res.returncode == 2 and "another benchmark" in res.stderr and "Traceback" not in res.stderr
    no_train = tmp_path / "no_train"
    no_train.mkdir()
    (no_train / "eval.json").write_text((helpsteer2_dir / "eval.json").read_text())
    res = cli("metrics", str(run), "--benchmark", str(no_train))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = cli("report", str(run), "--benchmark", str(other), "--out", str(tmp_path / "rep"))
    assert res.returncode == 2 and "another benchmark" in res.stderr


def test_the_report_puts_each_run_beside_the_length_baseline(helpsteer2_dir: Path, tmp_path: Path, cli):
    runs = [_eval(cli, helpsteer2_dir, m, tmp_path / m) for m in ("oracle", "random")]
    res = cli("report", *map(str, runs), "--benchmark", str(helpsteer2_dir), "--out", str(tmp_path / "rep"))
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Length control" in text and text.count("the length baseline") == 2


def test_the_signal_test_finds_a_predictor_length_does_not_explain_and_none_that_it_does():
    rng = random.Random(0)
    lengths = [rng.gauss(0, 1) for _ in range(400)]
    hidden = [rng.gauss(0, 1) for _ in range(400)]
    noise = [rng.gauss(0, 0.5) for _ in range(400)]
    labels = [1.0 if 0.5 * dl + 2.0 * h + e > 0 else -1.0 for dl, h, e in zip(lengths, hidden, noise, strict=True)]
    informed = adjusted_signal([(dl, h, y) for dl, h, y in zip(lengths, hidden, labels, strict=True)], "a")
    assert informed.p_value is not None and informed.p_value < 1e-6 and (informed.coefficient or 0) > 0
    parrot = adjusted_signal([(dl, 3 * dl, y) for dl, y in zip(lengths, labels, strict=True)], "a")  # length, restated
    assert parrot.p_value is not None and parrot.p_value > 0.5
    assert adjusted_signal([(0.1, 0.2, 1.0)] * 5, "a").p_value is None  # too few pairs to say
    coefficients, loglik = logistic_fit([[1.0, x] for x in lengths], [1.0 if y > 0 else 0.0 for y in labels])
    assert coefficients[1] > 0 and loglik < 0


def test_names_from_data_are_literal_text_in_the_tables():
    from pluralign.evaluation.length_control import (
        AdjustedSignal,
        LengthControl,
        PairwiseOrdering,
        markdown,
    )

    control = LengthControl(
        ordering=[PairwiseOrdering(attribute="a|b", pairs=0, method=None, longer_is_higher=None)],
        spread=[],
        signal=[AdjustedSignal(attribute="[x](y)", pairs=0, coefficient=None, p_value=None)],
    )
    text = "\n".join(markdown(control, "run | `z`"))
    assert "a\\|b" in text and "\\[x\\](y)" in text and "### run \\| \\`z\\`" in text
    assert "| a\\|b | 0 | - | - |" in text  # no pairs: no share, not 0
