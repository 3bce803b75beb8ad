"""`pluralign eval` with a server judge keeps `--concurrency` requests in flight across items
(issue 40, item 4): never more, and not item by item. Against a scripted OpenAI-compatible
server that counts the requests it answers at once (each takes 0.3 s)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from pluralign.choice.target_data import resolve_target_specs
from pluralign.evaluation.data.benchmark import load_benchmark
from pluralign.evaluation.evaluate import evaluate
from pluralign.settings import build_method, make_settings


def _eval(
    tmp_path: Path, upstream: str, helpsteer2_dir: Path, concurrency: int, workers: int | None, name: str,
    items: int = 6, samples: int = 1,
):  # fmt: skip
    """spm-zeroshot (scores only, ``samples`` passes an attribute) on the first ``items`` items."""
    bench = load_benchmark(helpsteer2_dir)
    bench = bench.subset(bench.eval[:items])
    options = {"backend": "openai", "base_urls": [upstream], "model": "m", "concurrency": concurrency}
    options |= {"cache": False, "estimator": "sample", "samples": samples, "reasoning": False, "max_retries": 0}
    options |= {"response_format": "json_schema"}  # no first request alone to learn the server's form
    settings = make_settings(options)
    method = build_method("spm-zeroshot", settings)
    assert method.items_at_once() == concurrency
    targets = resolve_target_specs(["high"], bench.attributes)
    return evaluate(bench, method, targets, tmp_path / name, workers=workers)


def test_eval_keeps_the_concurrency_in_flight_across_items_and_never_more(tmp_path: Path, scripted, helpsteer2_dir):
    upstream, script = scripted([("gate", 8, 30, 0.3, json.dumps({"A": 40, "B": 60}))])
    summary = _eval(tmp_path, upstream, helpsteer2_dir, 8, None, "across")
    assert summary.n_judged_now == 6 and summary.n_failed == 0
    assert script.hits == 6 * 5  # five attributes an item, one pass each
    assert script.peak == 8  # items overlap to fill the 8 places: more than one item's 5 requests


def test_many_items_at_once_still_share_one_concurrency(tmp_path: Path, scripted, helpsteer2_dir):
    upstream, script = scripted([("gate", 3, 30, 0.3, json.dumps({"A": 40, "B": 60}))])
    _eval(tmp_path, upstream, helpsteer2_dir, 3, 6, "capped")  # six items at once, 30 requests ready
    assert script.hits == 30 and script.peak == 3


def test_one_item_at_a_time_when_asked(tmp_path: Path, scripted, helpsteer2_dir):
    upstream, script = scripted([("gate", 5, 30, 0.3, json.dumps({"A": 40, "B": 60}))])
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


@pytest.fixture
def slow_turns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each turn for a place takes 0.5 ms to make, the lock held, as on a loaded machine: another
    thread waiting for the lock then gets it between two of a batch's turns whenever it can
    (forcing the fault a busy CI hit: one item's requests split by another's)."""
    from pluralign.prediction import places

    made = places.Turn.__init__

    def slow(self: places.Turn) -> None:
        made(self)
        time.sleep(0.0005)

    monkeypatch.setattr(places.Turn, "__init__", slow)


def test_each_items_requests_reach_the_server_together_when_items_overlap(
    tmp_path: Path, scripted, helpsteer2_dir, slow_turns
):
    """Each worker thread sends on its own loop, and an item's batch lines up for places in one
    step, so eight items judged at once through one place arrive item by item, never interleaved
    (before, each request lined up when its task first ran, and a busy machine split items)."""
    upstream, script = scripted([("ok", json.dumps({"A": 40, "B": 60}))])
    _eval(tmp_path, upstream, helpsteer2_dir, 1, 8, "together", items=8, samples=2)
    questions = [b["messages"][-1]["content"].split("Response A")[0] for b in script.bodies]
    runs = [q for i, q in enumerate(questions) if i == 0 or q != questions[i - 1]]
    assert len(questions) == 8 * 5 * 2 and len(runs) == len(set(runs)) == 8, "an item's requests were split"


def test_turns_that_no_request_came_to_take_are_given_back():
    """A batch stopped before its requests began (the first failed at once) leaves no place taken
    and no one in line: the next request gets a place at once."""
    from pluralign.prediction.places import Places

    async def main() -> None:
        places = Places(2)
        turns = places.line_up(5)  # two granted, three in line
        assert [t.granted for t in turns] == [True, True, False, False, False]
        async with places.hold(turns[0]):
            places.drop(turns)  # the one taken is left alone; the rest go back
            async with asyncio.timeout(1):
                async with places.hold():
                    pass
        async with asyncio.timeout(1):  # both places free again
            async with places.hold(), places.hold():
                pass

    asyncio.run(main())
