"""`pluralign eval` with a server judge keeps `--concurrency` requests in flight across items
(issue 40, item 4): never more, and not item by item. Against a scripted OpenAI-compatible
server that counts the requests it answers at once (each takes 0.3 s)."""

from __future__ import annotations

import json
from pathlib import Path

from pluralign.choice.target_data import resolve_target_specs
from pluralign.evaluation.data.benchmark import load_benchmark
from pluralign.evaluation.evaluate import evaluate
from pluralign.prediction.methods import build_method
from pluralign.settings import make_settings


def _eval(
    tmp_path: Path, upstream: str, helpsteer2_dir: Path, concurrency: int, workers: int | None, name: str,
    items: int = 6, samples: int = 1,
):  # fmt: skip
    """spm-zeroshot (scores only, ``samples`` passes an attribute) on the first ``items`` items."""
    bench = load_benchmark(helpsteer2_dir)
    bench = bench.subset(bench.eval[:items])
    options = {"backend": "openai", "base_urls": [upstream], "model": "m", "concurrency": concurrency}
    options |= {"cache": False, "estimator": "sample", "samples": samples, "reasoning": False, "max_retries": 0}
    settings = make_settings(options)
    method = build_method("spm-zeroshot", settings)
    assert method.items_at_once() == concurrency
    targets = resolve_target_specs(["high"], bench.attributes)
    return evaluate(bench, method, targets, tmp_path / name, workers=workers)


def test_eval_keeps_the_concurrency_in_flight_across_items_and_never_more(tmp_path: Path, scripted, helpsteer2_dir):
    upstream, script = scripted([("slow", 0.3, json.dumps({"A": 40, "B": 60}))])
    summary = _eval(tmp_path, upstream, helpsteer2_dir, 8, None, "across")
    assert summary.n_judged_now == 6 and summary.n_failed == 0
    assert script.hits == 6 * 5  # five attributes an item, one pass each
    assert script.peak == 8  # items overlap to fill the 8 places: more than one item's 5 requests


def test_many_items_at_once_still_share_one_concurrency(tmp_path: Path, scripted, helpsteer2_dir):
    upstream, script = scripted([("slow", 0.3, json.dumps({"A": 40, "B": 60}))])
    _eval(tmp_path, upstream, helpsteer2_dir, 3, 6, "capped")  # six items at once, 30 requests ready
    assert script.hits == 30 and script.peak == 3


def test_one_item_at_a_time_when_asked(tmp_path: Path, scripted, helpsteer2_dir):
    upstream, script = scripted([("slow", 0.3, json.dumps({"A": 40, "B": 60}))])
    _eval(tmp_path, upstream, helpsteer2_dir, 8, 1, "serial")
    assert script.hits == 30 and script.peak == 5  # one item's five requests together, never two items


def test_requests_that_share_a_prefix_reach_the_server_one_after_another(tmp_path: Path, scripted, helpsteer2_dir):
    """Places are handed out in the order they were asked for: with one place, an item's passes
    of one attribute (same system message and question) arrive together, so a server's prefix
    cache serves the second from the first."""
    upstream, script = scripted([("ok", json.dumps({"A": 40, "B": 60}))])
    _eval(tmp_path, upstream, helpsteer2_dir, 1, 2, "ordered", items=2, samples=3)

    def key(body: dict) -> tuple[str, str]:  # the attribute (system message) and the item (question)
        return body["messages"][0]["content"], body["messages"][-1]["content"].split("Response A")[0]

    keys = [key(b) for b in script.bodies]
    assert len(keys) == 2 * 5 * 3 and script.peak == 1
    for question in {q for _, q in keys}:  # each item's requests in the order it asked: passes together
        own = [k for k in keys if k[1] == question]
        assert all(len(set(own[i : i + 3])) == 1 for i in range(0, len(own), 3)), "an attribute's passes were split"


def test_each_items_requests_reach_the_server_together_when_items_overlap(tmp_path: Path, scripted, helpsteer2_dir):
    """Every thread sends on the client's one loop: an item's batch queues for places as a whole,
    so four items judged at once through one place arrive item by item, never interleaved."""
    upstream, script = scripted([("ok", json.dumps({"A": 40, "B": 60}))])
    _eval(tmp_path, upstream, helpsteer2_dir, 1, 4, "together", items=4, samples=2)
    questions = [b["messages"][-1]["content"].split("Response A")[0] for b in script.bodies]
    runs = [q for i, q in enumerate(questions) if i == 0 or q != questions[i - 1]]
    assert len(questions) == 4 * 5 * 2 and len(runs) == len(set(runs)) == 4, "an item's requests were split"
