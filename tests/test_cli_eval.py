"""`pluralign eval`, `metrics` and `targets` on the real benchmark, without a model."""

import json
from pathlib import Path

import pytest


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _oracle_eval(cli, bench: Path, target: Path, out: Path):
    return cli("eval", "--benchmark", str(bench), "--method", "oracle", "--target", str(target), "--out", str(out))


def test_oracle_high_low(helpsteer2_dir: Path, tmp_path: Path, cli):
    out = tmp_path / "oracle"
    res = cli(
        "eval",
        "--benchmark",
        str(helpsteer2_dir),
        "--method",
        "oracle",
        "--target",
        "high",
        "--target",
        "low",
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    targets = {t["name"]: t for t in _results(out)["targets"]}
    assert targets["high"]["accuracy"] == 100.0 and targets["high"]["n_scored"] == 436
    assert targets["low"]["accuracy"] == 100.0 and targets["low"]["n_scored"] == 441
    assert targets["high"]["mse"]["verbosity"] == 0.0
    lines = (out / "decisions.jsonl").read_text().splitlines()
    assert len(lines) == 1000
    first = json.loads(lines[0])
    assert {"item", "chosen", "correct", "predictions", "target"} <= first.keys()
    # the reference format is written too, and `score` reads it back
    io_file = out / "input_output" / "high.json"
    records = json.loads(io_file.read_text())
    assert records[0]["output"]["choice_info"]["predictions"] == first["predictions"]
    res = cli("metrics", str(io_file), "--target", "high", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["n_scored"] == 436


def test_random_is_near_half_and_seeded(helpsteer2_dir: Path, tmp_path: Path, cli):
    for seed, out in ((0, tmp_path / "a"), (0, tmp_path / "b"), (1, tmp_path / "c")):
        res = cli(
            "eval", "--benchmark", str(helpsteer2_dir), "--method", "random", "--seed", str(seed), "--out", str(out)
        )
        assert res.returncode == 0, res.stderr
    for t in _results(tmp_path / "a")["targets"]:
        assert 45.0 <= t["accuracy"] <= 55.0
    same = (tmp_path / "a" / "decisions.jsonl").read_text() == (tmp_path / "b" / "decisions.jsonl").read_text()
    other = (tmp_path / "a" / "decisions.jsonl").read_text() == (tmp_path / "c" / "decisions.jsonl").read_text()
    assert same and not other


@pytest.mark.slow  # over 9 s of a fast-tier worker (docs/contributing.md)
def test_sampled_targets_in_one_call_and_rescore(helpsteer2_dir: Path, targets_dir: Path, tmp_path: Path, cli):
    out = tmp_path / "s"
    res = _oracle_eval(cli, helpsteer2_dir, targets_dir / "sampled_helpsteer2", out)
    assert res.returncode == 0, res.stderr
    saved = _results(out)["targets"]
    assert len(saved) == 50 and all(t["accuracy"] == 100.0 for t in saved)
    res = cli("metrics", str(out), "--json")
    assert res.returncode == 0, res.stderr
    rescored = json.loads(res.stdout)
    assert [r["n_scored"] for r in rescored] == [t["n_scored"] for t in saved]


def test_env_var_benchmark(helpsteer2_dir: Path, tmp_path: Path, cli):
    res = cli(
        "eval",
        "--method",
        "oracle",
        "--limit",
        "20",
        "--out",
        str(tmp_path / "e"),
        env={"PLURALIGN_BENCHMARK": str(helpsteer2_dir)},
    )
    assert res.returncode == 0, res.stderr
    assert _results(tmp_path / "e")["n_items"] == 20


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kindness": 1.0}', "unknown attribute 'kindness'"),
        ('{"helpfulness": 1.3}', "outside [0, 1]"),
        ("not json", "not valid JSON"),
        ("{}", "empty"),
    ],
)
def test_bad_targets_one_line(helpsteer2_dir: Path, tmp_path: Path, cli, content: str, message: str):
    target = tmp_path / "t.json"
    target.write_text(content)
    res = _oracle_eval(cli, helpsteer2_dir, target, tmp_path / "o")
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_target_attribute_missing_from_labels_is_error(helpsteer2_dir: Path, tmp_path: Path, cli):
    target = tmp_path / "care.json"
    target.write_text('{"care": 1.0}')
    res = _oracle_eval(cli, helpsteer2_dir, target, tmp_path / "o")
    assert res.returncode == 2 and "no label for care" in res.stderr


def test_unknown_method_and_missing_benchmark(tmp_path: Path, cli):
    res = cli("eval", "--benchmark", str(tmp_path / "nope"), "--method", "oracle", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_targets_sample_cli(targets_dir: Path, tmp_path: Path, cli):
    res = cli(
        "targets",
        "sample",
        "--attributes",
        "3",
        "--count",
        "10",
        "--seed",
        "42",
        "--levels",
        "5",
        "--out",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    for f in sorted((targets_dir / "sampled_helpsteer2").glob("3attributes_*.json")):
        assert json.loads((tmp_path / f.name).read_text()) == json.loads(f.read_text())


def test_usage_errors_are_one_line(cli):
    res = cli("eval", "--bogus", "1")
    assert res.returncode == 2 and "No such option: --bogus" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = cli("choose")
    assert res.returncode == 2 and "Missing option '--target'" in res.stderr


def test_errors_raised_inside_commands_exit_nonzero(helpsteer2_dir: Path, tmp_path: Path, cli):
    """Typer returns, not raises, an Exit's code without standalone mode: it must still reach the shell."""
    res = cli("targets", "draw", "--n-attributes", "2", "--count", "3", "--levels", "1", "--out", str(tmp_path))
    assert res.returncode == 2 and "--levels must be at least 2" in res.stderr
    res = cli(
        "eval",
        "--benchmark",
        str(helpsteer2_dir),
        "--method",
        "oracle",
        "--metric",
        "cosine",
        "--out",
        str(tmp_path / "r"),
    )
    assert res.returncode == 2 and "unknown metric 'cosine'" in res.stderr


def test_the_old_name_of_metrics_still_works_and_says_so(helpsteer2_dir: Path, tmp_path: Path, cli):
    out = tmp_path / "r"
    assert (
        cli(
            "eval", "--benchmark", str(helpsteer2_dir), "--method", "oracle", "--limit", "3", "--out", str(out)
        ).returncode
        == 0
    )
    new, old = cli("metrics", str(out), "--json"), cli("score", str(out), "--json")
    assert old.returncode == 0 and old.stdout == new.stdout
    assert old.stderr.strip() == "warning: `pluralign score` is now `pluralign metrics`" and new.stderr == ""
