"""The length baseline scores as a length rule: right where only length carries the label,
no better than chance where only the attribute does."""

import json
import random
from pathlib import Path

import pytest

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.selection import select
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction.methods.length import LengthMethod, fit_line

VERBOSITY = Attribute(name="verbosity", description="How long the response is.")


def _items(n: int, label_from_length: bool, seed: int) -> list[Probe]:
    """Two responses an item; the label is the response's length rank, or a coin unrelated to it."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        short, long = "x" * rng.randint(5, 40), "x" * rng.randint(200, 900)
        pair = [short, long] if rng.random() < 0.5 else [long, short]
        if label_from_length:
            labels = [{"verbosity": 1.0 if len(r) > 100 else 0.0} for r in pair]
        else:
            hit = rng.randrange(2)
            labels = [{"verbosity": 1.0 if i == hit else 0.0} for i in range(2)]
        items.append(Probe(question="q", responses=pair, labels=labels))
    return items


def _accuracy(method: LengthMethod, items: list[Probe]) -> float:
    target = AlignmentTarget(values={"verbosity": 1.0})
    right = 0
    for item in items:
        preds = method.assess(item, [VERBOSITY]).predictions
        assert preds is not None
        chosen = select(preds, target).index
        right += (item.labels or [])[chosen]["verbosity"] == 1.0
    return right / len(items)


def test_where_only_length_carries_the_label_the_length_rule_is_right():
    method = LengthMethod(_items(200, label_from_length=True, seed=0))
    slope, _ = method.line("verbosity")
    assert slope > 0
    assert _accuracy(method, _items(200, label_from_length=True, seed=1)) == 1.0


def test_where_length_carries_nothing_the_length_rule_is_chance():
    method = LengthMethod(_items(400, label_from_length=False, seed=2))
    accuracy = _accuracy(method, _items(400, label_from_length=False, seed=3))
    assert 0.4 <= accuracy <= 0.6


def test_a_flat_line_when_every_length_is_the_same():
    assert fit_line([2.0, 2.0, 2.0], [0.0, 0.5, 1.0]) == (0.0, 0.5)
    assert fit_line([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]) == pytest.approx((1.0, 0.0))


def test_no_labels_for_an_attribute_is_one_line():
    from pluralign.support.errors import InputError

    method = LengthMethod(_items(10, label_from_length=True, seed=4))
    with pytest.raises(InputError, match="no labels for care"):
        method.assess(_items(1, True, 5)[0], [Attribute(name="care", description="d")])
    with pytest.raises(InputError, match="labelled train set"):
        LengthMethod([Probe(question="q", responses=["a", "b"])])


def test_length_on_helpsteer2_is_a_listed_method_and_beats_chance_on_verbosity(
    helpsteer2_dir: Path, tmp_path: Path, cli
):
    listed = cli("methods")
    assert listed.returncode == 0 and "length" in listed.stdout
    out = tmp_path / "length"
    (tmp_path / "wordy.json").write_text('{"verbosity": 1.0}')
    (tmp_path / "terse.json").write_text('{"verbosity": 0.0}')
    res = cli(
        "eval",
        "--benchmark",
        str(helpsteer2_dir),
        "--method",
        "length",
        "--target",
        str(tmp_path / "wordy.json"),
        "--target",
        str(tmp_path / "terse.json"),
        "--out",
        str(out),
    )
    assert res.returncode == 0, res.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["method"]["method"] == "length"
    assert all(t["accuracy"] > 85.0 for t in results["targets"]), results["targets"]  # 91.7 and 92.1 on eval.json
