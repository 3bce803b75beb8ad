"""A person is a group of one: one selection, one explanation, one grading and one decisions file
for both, and for one person the general road gives the paper's figures byte for byte, checked on
the committed evidence-study runs (bench/runs/evidence)."""

from __future__ import annotations

import gzip
import json

import pytest

from pluralign.choice.explanation import explain
from pluralign.choice.selection import select
from pluralign.choice.target_data import target_from_data
from pluralign.choice.targets import AlignmentTarget, GroupMember, GroupTarget, as_group
from pluralign.evaluation.grading import rescore
from pluralign.evaluation.metrics import Decision, grade_item
from support import ROOT

RUNS = ROOT / "bench" / "runs" / "evidence"


@pytest.mark.parametrize("method", ["spm", "random", "prompt-aligned"])
def test_the_general_road_reproduces_a_committed_run_byte_for_byte(method: str):
    run = RUNS / method
    saved = json.loads((run / "results.json").read_text())
    targets = {name: target_from_data(value, name) for name, value in saved["target_values"].items()}
    assert all(isinstance(t, AlignmentTarget) for t in targets.values())
    lines = gzip.decompress((run / "decisions.jsonl.gz").read_bytes()).decode().splitlines()  # committed packed
    for line in lines:
        d = Decision.model_validate_json(line)
        again = grade_item(
            d.item, d.labels, targets[d.target], d.chosen, saved["metric"], predictions=d.predictions, tied=d.tied,
            reasoning=d.reasoning, ties=saved["ties"], failed=d.failed,
        )  # fmt: skip
        assert again.line() == line
        if d.predictions is not None and method != "prompt-aligned":  # the choice itself, re-selected
            choice = select(d.predictions, targets[d.target], saved["metric"], ties=saved["ties"])
            assert (choice.index, choice.tied) == (d.chosen, d.tied)
    figures = ("accuracy", "n_scored", "n_skipped", "n_correct", "weighted_score", "n_choice_ties", "mse", "mae")
    for result in rescore(run):
        old = next(t for t in saved["targets"] if t["name"] == result.name)
        new = json.loads(json.dumps(result.payload()))
        assert {k: new[k] for k in figures} == {k: old[k] for k in figures}, result.name
        assert new["accuracy_ci95"] == old["accuracy_ci95"]


def test_a_person_and_their_group_of_one_choose_and_explain_alike():
    person = AlignmentTarget(name="ann", values={"care": 0.83, "authority": 0.17})
    alone = GroupTarget(name="ann", members=[GroupMember(target=person)])
    predictions = [{"care": 0.5, "authority": 0.5}, {"care": 0.9, "authority": 0.2}, {"care": 0.9, "authority": 0.2}]
    a, b = select(predictions, person), select(predictions, alone)
    assert (
        (a.index, a.distances, a.tied, a.shares)
        == (b.index, b.distances, b.tied, b.shares)
        == (1, a.distances, [1, 2], [0.0, 0.5, 0.5])
    )
    assert explain(predictions, person, a).sentence == explain(predictions, alone, b).sentence
    assert as_group(person).members[0].target is person
    labels = [{"care": 0.0, "authority": 0.0}, {"care": 1.0, "authority": 0.0}, {"care": 0.8, "authority": 0.2}]
    d, g = grade_item(0, labels, person, 2), grade_item(0, labels, alone, 2)
    assert (d.correct, d.skipped, d.matched) == (g.correct, g.skipped, g.matched) == ([2], False, 1.0)
    assert g.label_shares == [0.0, 0.0, 1.0] and d.label_shares is None  # a person's line is as it always was
