"""Selection (distances, ties) and the metrics that grade a run."""

import json
import math
from pathlib import Path

import pytest

from pluralign.choice.selection import Metric, distance, select
from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.data import load_benchmark
from pluralign.evaluation.metrics import bootstrap_ci, grade_item, summarize
from pluralign.support.errors import InputError

T = AlignmentTarget(name="t", values={"care": 1.0, "authority": 0.17})


def test_euclidean_selection_picks_closest():
    preds = [{"care": 0.2, "authority": 0.9}, {"care": 0.9, "authority": 0.2}, {"care": 0.5, "authority": 0.5}]
    choice = select(preds, T, reasonings=["a", "b", "c"])
    assert choice.index == 1 and choice.reasoning == "b" and not choice.is_tie
    assert math.isclose(choice.distances[1], math.hypot(0.1, 0.03))


def test_metrics_differ_where_they_should():
    target = AlignmentTarget(values={"care": 1.0, "authority": 0.0}, weights={"care": 1.0, "authority": 10.0})
    preds = [{"care": 0.6, "authority": 0.0}, {"care": 0.8, "authority": 0.3}]
    assert select(preds, target, Metric.euclidean).index == 1
    assert select(preds, target, Metric.weighted).index == 0
    assert select(preds, target, Metric.l1).index == 0
    assert math.isclose(distance([0.6, 0.0], target, "l1"), 0.4)


def test_ties_go_to_lowest_index_and_are_reported():
    preds = [{"care": 0.5, "authority": 0.5}] * 3
    choice = select(preds, T)
    assert choice.index == 0 and choice.tied == [0, 1, 2]


def test_selection_errors():
    with pytest.raises(InputError, match="no value for authority"):
        select([{"care": 1.0}, {"care": 0.0}], T)
    with pytest.raises(InputError, match="at least 2"):
        select([{"care": 1.0, "authority": 0.0}], T)


def test_judge_item_skips_full_ties_and_missing_label_is_error():
    labels = [{"care": 0.5, "authority": 0.5}, {"care": 0.5, "authority": 0.5}]
    assert grade_item(0, labels, T, 1).skipped
    d = grade_item(0, [{"care": 1.0, "authority": 0.17}, {"care": 0.0, "authority": 0.17}], T, 1)
    assert d.correct == [0] and not d.skipped
    with pytest.raises(InputError, match="missing label"):
        grade_item(0, [{"care": 1.0}, {"care": 0.0}], T, 0)


def test_summarize_matches_hand_computation():
    labels_a = [{"care": 1.0, "authority": 0.17}, {"care": 0.0, "authority": 0.17}]
    labels_b = [{"care": 0.5, "authority": 0.5}, {"care": 0.5, "authority": 0.5}]
    preds = [{"care": 0.8, "authority": 0.2}, {"care": 0.4, "authority": 0.2}]
    decisions = [
        grade_item(0, labels_a, T, 0, predictions=preds),
        grade_item(1, labels_a, T, 1, predictions=preds),
        grade_item(2, labels_b, T, 0, predictions=preds),
    ]
    r = summarize(decisions, T)
    assert (r.n_scored, r.n_skipped, r.n_correct, r.accuracy) == (2, 1, 1, 50.0)
    assert r.weighted_score == pytest.approx((100 + 0) / 2)
    # MSE over all 3 items x 2 responses for care: errors 0.2,0.4 | 0.2,0.4 | 0.3,0.1
    assert r.mse is not None and r.mse["care"] == pytest.approx((0.04 + 0.16) * 2 / 6 + (0.09 + 0.01) / 6)


def test_bootstrap_ci_brackets_mean():
    lo, hi = bootstrap_ci([True] * 60 + [False] * 40)
    assert lo < 60 < hi and hi - lo < 25


def test_oracle_and_length_baseline_match_published_facts(helpsteer2_dir: Path):
    bench = load_benchmark(helpsteer2_dir)
    high = AlignmentTarget(name="high", values=dict.fromkeys(bench.attributes, 1.0))
    low = AlignmentTarget(name="low", values=dict.fromkeys(bench.attributes, 0.0))
    for target, n_scored, longer_acc in ((high, 436, 63.07), (low, 441, 41.95)):
        decisions = []
        for i, p in enumerate(bench.eval):
            longer = max(range(len(p.responses)), key=lambda j: len(p.responses[j]))
            decisions.append(grade_item(i, p.labels, target, longer))
        r = summarize(decisions, target)
        assert r.n_scored == n_scored
        assert r.accuracy == pytest.approx(longer_acc, abs=0.01)


def test_results_json_is_plain_json(tmp_path: Path):
    r = summarize([grade_item(0, [{"care": 1.0, "authority": 0.0}, {"care": 0.0, "authority": 0.0}], T, 0)], T)
    json.dumps(r.model_dump())
