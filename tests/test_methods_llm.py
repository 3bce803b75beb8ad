"""Every LLM method end to end on 3 HelpSteer2 items with the real SmolLM2 (scores carry no
signal at this size; these tests check the plumbing, the logging and the bookkeeping)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.data import load_benchmark
from pluralign.evaluation.evaluate import evaluate
from pluralign.settings import Settings, build_method

pytestmark = pytest.mark.slow  # real models

TARGET = AlignmentTarget(name="t", values={"verbosity": 1.0, "helpfulness": 0.0})
OTHER = AlignmentTarget(name="u", values={"verbosity": 0.0})
FEW_SHOT = {"n_examples": 2, "example_max_chars": 200}


def _settings(bench_dir: Path, cache: Path, **kw) -> Settings:
    base = dict(
        benchmark_dir=bench_dir,
        model="smollm2-135m",
        samples=2,
        max_tokens=1024,
        cache_path=cache,
        n_ctx=4096,
    )
    base.update(kw)
    return Settings(**base)


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("spm", {"similarity": "embedding", **FEW_SHOT}),
        ("spm-zeroshot", {}),
        ("regression", {}),
        ("unaligned", {"samples": 1}),
        ("prompt-aligned", {"samples": 1, **FEW_SHOT}),
    ],
)
def test_llm_method_on_three_items(helpsteer2_dir: Path, tmp_path: Path, name: str, extra: dict):
    bench = load_benchmark(helpsteer2_dir)
    method = build_method(name, _settings(bench.path, tmp_path / "cache.sqlite", **extra))
    try:
        summary = evaluate(bench, method, [TARGET, OTHER], tmp_path / "run", limit=3, seed=1)
    finally:
        method.close()
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["n_items"] == 3 and len(results["targets"]) == 2
    assert results["llm_calls"] >= 3 and results["prompt_tokens"] > 0
    decisions = [json.loads(line) for line in (tmp_path / "run" / "decisions.jsonl").read_text().splitlines()]
    assert len(decisions) == 6 and all(d["chosen"] in (0, 1) for d in decisions)
    calls = [json.loads(line) for line in (tmp_path / "run" / "calls.jsonl").read_text().splitlines()]
    assert calls and all(c["messages"][0]["role"] == "system" and c["raw"] for c in calls)
    assessments = [
        json.loads(line)["assessment"] for line in (tmp_path / "run" / "assessments.jsonl").read_text().splitlines()
    ]
    if name in ("spm", "spm-zeroshot", "regression"):
        # scores depend only on the items: one assessment per item for both targets
        assert len(assessments) == 3
        for j in assessments:
            for attr in ("verbosity", "helpfulness"):
                samples = j["samples"][attr]
                assert len(samples) == 2  # 2 samples (spm), or 2 responses (regression)
                for i in range(2):
                    if name == "regression":
                        scores = samples[i]["scores"]
                    else:
                        scores = [s["scores"][i] for s in samples]
                    assert j["predictions"][i][attr] == pytest.approx(sum(scores) / len(scores) / 100)
        if name == "spm":
            examples = [c for c in calls if len(c["messages"]) > 2]
            assert examples and examples[0]["messages"][1]["role"] == "user"
            assert examples[0]["messages"][2]["role"] == "assistant"
            assert summary.calls_saved_by_sharing > 0
    elif name == "prompt-aligned":
        assert len(assessments) == 6  # target-dependent: once per target
        systems = {c["messages"][0]["content"] for c in calls}
        assert any("Strongly demonstrates verbosity" in s for s in systems)
        assert any("Strongly demonstrates a lack of verbosity" in s for s in systems)
    else:
        assert len(assessments) == 3 and all(j["choice"] in (0, 1) for j in assessments)


def test_shuffled_samples_see_both_orders(helpsteer2_dir: Path, tmp_path: Path):
    bench = load_benchmark(helpsteer2_dir)
    method = build_method("spm-zeroshot", _settings(bench.path, tmp_path / "c.sqlite", samples=4))
    try:
        from pluralign.choice.attributes import DEFAULT_REGISTRY

        assessment = method.assess(bench.eval[0], DEFAULT_REGISTRY.require(["coherence"]), seed=11)
    finally:
        method.close()
    orders = [tuple(s["order"]) for s in assessment.samples["coherence"]]
    assert set(orders) == {(0, 1), (1, 0)}
