"""Group targets: shares of a group whose members' choices are known, their files and their errors."""

import json
import random

import numpy as np
import pytest

from pluralign.choice.explanation import explain_group, group_picker
from pluralign.choice.selection import select
from pluralign.choice.selection import select as select_group
from pluralign.choice.target_data import load_target_file as load_goal_file
from pluralign.choice.target_data import read_target as read_goal
from pluralign.choice.target_data import target_from_data as goal_from_data
from pluralign.choice.targets import AlignmentTarget, GroupTarget
from pluralign.support.errors import InputError

# response 0 is helpful and short, 1 unhelpful and long, 2 middling
PREDICTIONS = [
    {"helpfulness": 1.0, "verbosity": 0.0},
    {"helpfulness": 0.0, "verbosity": 1.0},
    {"helpfulness": 0.5, "verbosity": 0.5},
]


def group(*members):
    return goal_from_data(list(members), "team")


def test_shares_are_the_weighted_members_who_choose_each_response():
    g = group(
        {"values": {"helpfulness": 1.0}, "weight": 3},  # chooses 0
        {"values": {"verbosity": 1.0}, "weight": 1.5},  # chooses 1
        {"helpfulness": 0.5, "verbosity": 0.5},  # chooses 2, weight 1
    )
    choice = select_group(PREDICTIONS, g)
    assert choice.picks == [[0], [1], [2]]
    assert choice.shares == pytest.approx([3 / 5.5, 1.5 / 5.5, 1 / 5.5])
    assert sum(choice.shares) == pytest.approx(1.0)
    assert choice.index == 0 and not choice.is_tie
    # each response's distance is the members' weighted mean distance to it
    expected = sum(w * d for w, d in [(3, 0.0), (1.5, 1.0), (1, 2**0.5 / 2)]) / 5.5
    assert choice.distances[0] == pytest.approx(expected)


def test_a_member_who_ties_splits_their_weight_and_equal_shares_go_to_the_lowest_index():
    # wants helpfulness 0.5 only: 0 and 1 are equally far (0.5), 2 is at the target
    g = group({"helpfulness": 0.75}, {"helpfulness": 0.25})
    choice = select_group(PREDICTIONS[:2], g)
    assert choice.shares == pytest.approx([0.5, 0.5])
    assert choice.index == 0 and choice.tied == [0, 1]
    tied_member = group({"helpfulness": 0.5})
    split = select_group(PREDICTIONS[:2], tied_member)
    assert split.picks == [[0, 1]] and split.shares == pytest.approx([0.5, 0.5]) and split.index == 0
    sentence = explain_group(PREDICTIONS[:2], g, choice).sentence
    assert sentence.startswith("The group is split evenly between responses 0 and 1 (50% each)")


def test_a_group_of_one_chooses_as_that_person_does():
    rng = random.Random(3)
    for _ in range(200):
        preds = [{"care": rng.choice([0, 0.25, 0.5, 0.75, 1]), "fairness": rng.random()} for _ in range(3)]
        target = AlignmentTarget(values={"care": rng.choice([0, 1.0]), "fairness": rng.random()})
        alone = select(preds, target)
        choice = select_group(preds, GroupTarget(members=[{"target": target}]))
        assert choice.picks[0] == (alone.tied or [alone.index])
        assert choice.index == alone.index


def test_the_vectorised_picker_agrees_with_selection():
    rng = random.Random(7)
    attrs = ["care", "fairness", "loyalty"]
    for _ in range(100):
        members = [
            {"values": {a: rng.random() for a in rng.sample(attrs, rng.randint(1, 3))}, "weight": rng.uniform(0.1, 5)}
            for _ in range(rng.randint(1, 12))
        ]
        g = goal_from_data(members, "g")
        preds = [{a: rng.random() for a in attrs} for _ in range(4)]
        pick = group_picker(g, g.attributes, "auto")
        values = np.array([[p[a] for a in g.attributes] for p in preds])
        assert pick(values) == select_group(preds, g).index


def test_the_explanation_says_how_divided_the_group_is():
    g = group(
        {"values": {"helpfulness": 1.0}, "weight": 6},
        {"values": {"verbosity": 1.0}, "weight": 3},
        {"values": {"helpfulness": 0.5}, "weight": 1},
    )
    choice = select_group(PREDICTIONS, g)
    ex = explain_group(PREDICTIONS, g, choice)
    assert ex.sentence == (
        "60% of the group prefers response 0; 30% response 1 (for its verbosity), 10% response 2 (for its helpfulness)."
    )
    assert ex.chosen == 0 and ex.runner_up == 1 and not ex.near_tie
    whole = group({"helpfulness": 1.0}, {"helpfulness": 0.9})
    assert explain_group(PREDICTIONS, whole, select_group(PREDICTIONS, whole)).sentence == (
        "The whole group (2 profiles) prefers response 0."
    )
    # re-judgements: draws that keep the order agree; a close split is a near tie
    draws = {"helpfulness": [[1.0, 0.0, 0.5], [0.9, 0.1, 0.5]], "verbosity": [[0.0, 1.0, 0.5], [0.1, 0.9, 0.5]]}
    sure = explain_group(PREDICTIONS, g, choice, draws=draws)
    assert sure.confidence == 1.0 and "2 samples" in sure.confidence_note
    close = group({"helpfulness": 1.0}, {"values": {"verbosity": 1.0}, "weight": 0.98})
    assert explain_group(PREDICTIONS, close, select_group(PREDICTIONS, close)).near_tie


def test_group_files_jsonl_list_object_and_samples(tmp_path):
    (tmp_path / "team.jsonl").write_text(
        '{"name": "alex", "values": {"care": 1}, "weight": 2}\n\n{"care": 0}\n{"name": "sam", "care": 0.5}\n'
    )
    team = load_goal_file(tmp_path / "team.jsonl")
    assert isinstance(team, GroupTarget) and team.name == "team" and [m.weight for m in team.members] == [2, 1, 1]
    assert team.members[0].target.name == "alex" and team.total_weight == 4
    assert team.members[2].target.name == "sam" and team.members[2].target.values == {"care": 0.5}
    (tmp_path / "listed.json").write_text(json.dumps([{"care": 1}, {"values": {"care": 0.5}, "weight": 0.5}]))
    assert load_goal_file(tmp_path / "listed.json").name == "listed"
    (tmp_path / "kde.json").write_text(json.dumps({"name": "kde", "samples": [{"care": 0.8}, {"care": 0.9}]}))
    kde = load_goal_file(tmp_path / "kde.json")
    assert kde.name == "kde" and [m.weight for m in kde.members] == [1, 1]
    assert kde.mean_values() == pytest.approx({"care": 0.85})
    (tmp_path / "one.json").write_text('{"care": 1}')
    assert isinstance(load_goal_file(tmp_path / "one.json"), AlignmentTarget)
    assert isinstance(read_goal('[{"care": 1}, {"care": 0}]'), GroupTarget)
    assert isinstance(read_goal('{"group": [{"care": 1}]}'), GroupTarget)
    assert isinstance(read_goal('{"care": 1}'), AlignmentTarget)
    # a member's name is a label, whatever it says
    assert read_goal('[{"name": "../../etc/passwd", "values": {"care": 1}}]').members[0].target.name.startswith("..")
    # the file round-trips
    again = goal_from_data(team.to_file_dict(), "x")
    assert again == team


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "no members"),
        ({"group": []}, "no members"),
        ([3], "expected a JSON object"),
        ([{"weight": 2, "care": 1}], "weight goes with the full form"),
        ([{"values": {"care": 1}, "weight": -1}], "weight must be a positive number"),
        ([{"values": {"care": 1}, "weight": 0}], "weight must be a positive number"),
        ([{"values": {"care": 1}, "weight": True}], "weight must be a positive number"),
        ([{"values": {"care": 1}, "weight": "2"}], "weight must be a positive number"),
        ([{"values": {"care": 1}, "weight": float("inf")}], "weight must be a positive number"),
        ([{"care": 1.5}], "outside [0, 1]"),
        ([{"kindness": 1}], "unknown attribute"),
        ({"samples": [{"values": {"care": 1}, "weight": 2}]}, "weighted equally"),
        ({"group": [{"care": 1}], "samples": [{"care": 0}]}, "not both"),
        ({"group": 5, "samples": [{"care": 0}]}, "not both"),
        ({"name": 3, "group": [{"care": 1}]}, "name must be a string"),
        ({"name": "a\nb", "group": [{"care": 1}]}, "group name"),
        ([{"care": 1}] * 10_001, "at most 10,000"),
        # a misspelt field: once dropped in silence (a member of weight 3 counted as 1)
        ([{"values": {"care": 1}, "wieght": 3}, {"care": 0}], "member 1: unknown field 'wieght'"),
        ([{"care": 0}, {"values": {"care": 1}, "wieghts": {"care": 2}}], "member 2: unknown field 'wieghts'"),
        ({"group": [{"care": 1}], "nam": "team"}, "group g: unknown field 'nam' (this form holds name, group)"),
        ({"samples": [{"care": 1}], "weights": [1]}, "unknown field 'weights' (this form holds name, samples)"),
    ],
)
def test_bad_groups_are_refused_with_one_line(raw, message):
    with pytest.raises(InputError) as info:
        goal_from_data(raw, "g")
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "name", "message"),
    [
        ({"care": 2}, "target", "target: value 2.0 for 'care' is outside [0, 1]"),
        ({"care": 2}, "alex", "target alex: value 2.0 for 'care' is outside [0, 1]"),
        ({}, "target", "target: empty: name at least one attribute"),
        ([{"care": 2}], "group", "group: target member-1: value 2.0"),
        ([{"care": 2}], "team", "group team: target member-1: value 2.0"),
        ({"name": 3, "group": [{"care": 1}]}, "group", "group: name must be a string"),
        ({"samples": [{"values": {"care": 1}, "weight": 2}]}, "group", "group, sample 1: samples are weighted"),
        ([], "group", "group: no members"),
    ],
)
def test_a_message_names_a_target_by_its_kind_once(raw, name, message):
    """A request's target is named "target" (its field): the message says so once, not
    "target target"; a named one keeps its name."""
    with pytest.raises(InputError) as info:
        goal_from_data(raw, name)
    assert str(info.value).startswith(message), str(info.value)


def test_bad_group_files(tmp_path):
    (tmp_path / "torn.jsonl").write_text('{"care": 1}\n{"care": \n')
    with pytest.raises(InputError, match="line 2 is not JSON"):
        load_goal_file(tmp_path / "torn.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="no members"):
        load_goal_file(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="not valid JSON"):
        read_goal("[{")
    before = (tmp_path / "torn.jsonl").read_bytes()
    assert (tmp_path / "torn.jsonl").read_bytes() == before  # reading never changes the file


@pytest.mark.parametrize("weights", [(5e-324, 5e-324), (1e308, 1e308), (5e-324, 1.0), (1e-300, 1e300)])
def test_weights_at_the_ends_of_the_floats_give_the_same_shares_as_their_ratio(weights):
    """Shares come from weights over the largest: no underflow to 0/0 (5e-324), no overflow (1e308)."""
    g = group(
        {"values": {"helpfulness": 1.0}, "weight": weights[0]}, {"values": {"verbosity": 1.0}, "weight": weights[1]}
    )
    ratio = weights[0] / max(weights) if weights[0] < max(weights) else 1.0
    expected = [
        ratio / (ratio + weights[1] / max(weights)),
        (weights[1] / max(weights)) / (ratio + weights[1] / max(weights)),
    ]
    choice = select_group(PREDICTIONS[:2], g)
    assert choice.shares == pytest.approx(expected) and all(np.isfinite(choice.shares))
    draws = {"helpfulness": [[1.0, 0.0], [0.9, 0.1], [1.0, 0.2]], "verbosity": [[0.0, 1.0], [0.1, 0.9], [0.2, 1.0]]}
    explained = explain_group(PREDICTIONS[:2], g, choice, draws=draws)
    assert explained.sentence and explained.confidence is not None and 0 <= explained.confidence <= 1
    assert group_picker(g, ["helpfulness", "verbosity"], "auto")(np.array([[1.0, 0.0], [0.0, 1.0]])) == choice.index
