"""`pluralign eval` with group targets: the share of the group whose own choice is matched,
checked against a count made here from the labels, through the library and the CLI."""

import json
import random
import re

import numpy as np
import pytest

from pluralign.choice.target_data import resolve_target_specs
from pluralign.choice.target_data import target_from_data as goal_from_data
from pluralign.choice.targets import GroupTarget
from pluralign.evaluation.data.benchmark import load_benchmark
from pluralign.evaluation.evaluate import evaluate, make_plan
from pluralign.evaluation.grading import rescore
from pluralign.evaluation.metrics import grade_item as grade_group_item
from pluralign.prediction.methods.simple import OracleMethod, RandomMethod
from pluralign.support.errors import InputError
from support import HELPSTEER2, TARGETS, one_line_error, run_cli

LABELS = [
    {"care": 1.0, "fairness": 0.0, "authority": 0.5},
    {"care": 0.0, "fairness": 1.0, "authority": 0.5},
    {"care": 0.5, "fairness": 0.5, "authority": 0.5},
]


def test_matched_share_counts_the_members_whose_own_choice_includes_the_pick():
    team = goal_from_data(
        [
            {"values": {"care": 1.0}, "weight": 3},  # chooses 0
            {"values": {"fairness": 1.0}, "weight": 1},  # chooses 1
            {"values": {"care": 0.75}, "weight": 2},  # 0 and 2 tie (0.25 each): both count
            {"values": {"authority": 0.0}, "weight": 4},  # every response ties: left out
        ],
        "team",
    )
    assert isinstance(team, GroupTarget)
    d = grade_group_item(0, LABELS, team, chosen=0)
    assert d.scored_weight == pytest.approx(6 / 10)
    assert d.label_shares == pytest.approx([5 / 6, 1 / 6, 2 / 6])
    assert d.matched == pytest.approx(5 / 6)
    assert grade_group_item(0, LABELS, team, chosen=2).matched == pytest.approx(2 / 6)
    everyone_tied = goal_from_data([{"authority": 1.0}, {"authority": 0.0}], "flat")
    assert isinstance(everyone_tied, GroupTarget)
    skipped = grade_group_item(0, LABELS, everyone_tied, chosen=1)
    assert skipped.skipped and skipped.matched is None


def sampled_group(n: int, seed: int) -> GroupTarget:
    """Sampled HelpSteer2 targets as weighted members."""
    targets = resolve_target_specs([str(TARGETS / "sampled_helpsteer2")])
    rng = random.Random(seed)
    rows = [
        {"name": t.name, "values": dict(t.values), "weight": rng.choice([1, 2, 3, 0.5])} for t in rng.sample(targets, n)
    ]
    g = goal_from_data(rows, f"users-{seed}")
    assert isinstance(g, GroupTarget)
    return g


def count_by_hand(labels, group, chosen):
    """The matched share from first principles: each member's truly closest responses."""
    matched = scored = 0.0
    for m in group.members:
        names = sorted(m.target.values)
        goal = np.array([m.target.values[a] for a in names])
        d = [float(np.linalg.norm(np.array([lab[a] for a in names]) - goal)) for lab in labels]
        best = {i for i, x in enumerate(d) if x == min(d)}
        if len(best) == len(labels):
            continue
        scored += m.weight
        matched += m.weight if chosen in best else 0.0
    return None if scored == 0 else matched / scored


@pytest.mark.parametrize("method", [OracleMethod(), RandomMethod()], ids=["oracle", "random"])
def test_eval_of_a_group_matches_a_count_from_the_labels(tmp_path, method):
    bench = load_benchmark(HELPSTEER2)
    groups = [sampled_group(8, 1), sampled_group(30, 2)]
    high = resolve_target_specs(["high"], bench.attributes)
    summary = evaluate(bench, method, [*high, *groups], tmp_path / "run", limit=40, seed=3)
    assert [r.name for r in summary.results] == ["high", "users-1", "users-2"]  # one road, one result type
    group_results = [r for r in summary.results if r.is_group]
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    every = [json.loads(x) for x in (tmp_path / "run" / "decisions.jsonl").read_text().splitlines()]
    lines = [d for d in every if d["target"] != "high"]
    assert len(lines) == 80 and set(saved["target_values"]) == {"high", "users-1", "users-2"}
    assert not (tmp_path / "run" / "group_decisions.jsonl").exists()  # one decisions file
    for g, result in zip(groups, group_results, strict=True):
        mine = [d for d in lines if d["target"] == g.name]
        matched = [count_by_hand(d["labels"], g, d["chosen"]) for d in mine]
        scored = [m for m in matched if m is not None]
        assert result.n_scored == len(scored) > 30
        assert result.accuracy == pytest.approx(100 * np.mean(scored))
        assert result.best_share is not None and result.accuracy <= result.best_share + 1e-9
        assert result.members == len(g.members)
    if isinstance(method, OracleMethod):  # the labels' largest share is what the best response gets
        for d in lines:
            shares = d["shares"]
            assert d["chosen"] in [i for i, s in enumerate(shares) if s >= max(shares) - 1e-9]
        assert all(r.accuracy > 50 for r in group_results)
    again = rescore(tmp_path / "run")
    assert [r.model_dump() for r in again] == [r.model_dump() for r in summary.results]


def test_a_method_that_judges_per_target_is_refused_for_a_group():
    bench = load_benchmark(HELPSTEER2)
    judged_per_target = OracleMethod()
    judged_per_target.target_dependent = True  # the property under test: prompt-aligned's
    with pytest.raises(InputError, match="one target at a time"):
        make_plan(bench, judged_per_target, [sampled_group(3, 0)], limit=2)


def test_goal_specs_take_groups_files_directories_and_inline_json(tmp_path):
    (tmp_path / "solo.json").write_text('{"helpfulness": 1}')
    (tmp_path / "team.jsonl").write_text('{"values": {"helpfulness": 1}, "weight": 2}\n\n{"verbosity": 0}\n')
    (tmp_path / "crowd.json").write_text('{"name": "crowd", "samples": [{"coherence": 1}, {"coherence": 0}]}')
    goals = resolve_target_specs([str(tmp_path), "low", '[{"verbosity": 1}]'], ["helpfulness", "verbosity"])
    kinds = {g.name: type(g).__name__ for g in goals}
    assert kinds == {
        "crowd": "GroupTarget",
        "solo": "AlignmentTarget",
        "team": "GroupTarget",
        "low": "AlignmentTarget",
        "group": "GroupTarget",
    }
    with pytest.raises(InputError, match="share the name"):
        resolve_target_specs([str(tmp_path / "team.jsonl"), str(tmp_path / "team.jsonl")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no \.json or \.jsonl"):
        resolve_target_specs([str(tmp_path / "empty")])
    with pytest.raises(InputError, match="not a file"):
        resolve_target_specs([str(tmp_path / "missing.jsonl")])


def test_cli_eval_of_a_group_then_metrics(tmp_path):
    team = tmp_path / "team.jsonl"
    team.write_text(
        '{"name": "../../alex", "values": {"helpfulness": 1, "verbosity": 0}, "weight": 3}\n'
        '{"name": "sam", "values": {"verbosity": 1}}\n'
    )
    out = tmp_path / "run"
    base = ["eval", "--method", "oracle", "--benchmark", str(HELPSTEER2), "--limit", "12", "--out", str(out)]
    res = run_cli(*base, "--target", str(team), "--target", "high")
    assert res.returncode == 0, res.stderr
    assert "matched share" in res.stdout and "team" in res.stdout and "high" in res.stdout
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        ".lock",
        "assessments.jsonl",
        "calls.jsonl",
        "decisions.jsonl",
        "results.json",
        "run.json",
    ]
    assert not (tmp_path / "alex").exists()
    saved = json.loads((out / "results.json").read_text())
    shown = run_cli("metrics", str(out), "--json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    shown_group = next(r for r in rows if r.get("group"))
    saved_group = next(t for t in saved["targets"] if t["name"] == "team")
    assert shown_group["accuracy"] == pytest.approx(saved_group["accuracy"]) and saved_group["members"] == 2
    # the same folder run again without the group leaves no stale group decisions
    res = run_cli(*base, "--target", "high")
    assert res.returncode == 0, res.stderr
    assert {json.loads(x)["target"] for x in (out / "decisions.jsonl").read_text().splitlines()} == {"high"}
    bad = run_cli(*base, "--target", str(tmp_path / "nope.jsonl"))
    one_line_error(bad, "nope.jsonl")
    team.write_text('{"values": {"helpfulness": 1}, "weight": -1}\n')
    one_line_error(run_cli(*base, "--target", str(team)), "weight must be a positive number")


def test_report_lists_groups_with_their_names_as_text(tmp_path):
    from pluralign.evaluation.report import write_report

    bench = load_benchmark(HELPSTEER2)
    rows = [{"values": {"helpfulness": 1.0}, "weight": 2}, {"verbosity": 0.0}]
    evil = goal_from_data({"name": "<img src=x onerror=alert(1)>|*team*", "group": rows}, "g")
    evaluate(bench, OracleMethod(), [evil], tmp_path / "run", limit=10)
    text = write_report([tmp_path / "run"], tmp_path / "report").read_text()
    section = text.split("## Groups", 1)[1]
    assert "&lt;img src=x onerror=alert(1)&gt;\\|\\*team\\*" in section and "<img" not in text
    row = next(line for line in section.splitlines() if "team" in line)
    assert len(re.split(r"(?<!\\)\|", row)) == 9  # 7 columns: the name's '|' broke none
