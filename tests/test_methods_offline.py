"""The embedding method (real MiniLM) and the reward-model method (a tiny model made here)."""

from pathlib import Path

import pytest

from pluralign.choice.attributes import DEFAULT_REGISTRY as R
from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.data import load_benchmark
from pluralign.evaluation.evaluate import evaluate
from pluralign.settings import Settings, build_method

pytestmark = pytest.mark.slow  # real models


def test_embedding_scorer_learns_verbosity(helpsteer2_dir: Path, tmp_path: Path):
    bench = load_benchmark(helpsteer2_dir)
    method = build_method("embedding", Settings(benchmark_dir=bench.path))
    hits = total = 0
    for probe in bench.eval[:80]:
        a, b = (lab["verbosity"] for lab in probe.labels)
        if a == b:
            continue
        pred = method.assess(probe, [R["verbosity"]]).predictions
        assert all(0.0 <= p["verbosity"] <= 1.0 for p in pred)
        hits += (pred[0]["verbosity"] > pred[1]["verbosity"]) == (a > b)
        total += 1
    assert total > 20 and hits / total > 0.7  # length-driven verbosity is learnable
    target = AlignmentTarget(name="v", values={"verbosity": 1.0})
    summary = evaluate(bench, method, [target], tmp_path / "run", limit=40)
    assert summary.results[0].accuracy is not None and summary.results[0].accuracy > 55
    knn = build_method("embedding", Settings(benchmark_dir=bench.path, regressor="knn"))
    assert knn.assess(bench.eval[0], [R["helpfulness"]]).predictions is not None


@pytest.fixture(scope="module")
def tiny_reward_models(tmp_path_factory, smollm2_path):
    """Two tiny randomly initialised Llama reward models: scalar and per-attribute."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    out = {}
    for kind, labels in (("scalar", ["reward"]), ("multi", ["helpfulness", "verbosity"])):
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)},
            pad_token_id=tok.pad_token_id,
        )
        model = LlamaForSequenceClassification(config)
        folder = tmp_path_factory.mktemp(f"rm-{kind}")
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        out[kind] = folder
    return out


def test_reward_model_scalar_picks_highest(helpsteer2_dir: Path, tiny_reward_models):
    bench = load_benchmark(helpsteer2_dir)
    method = build_method("reward-model", Settings(reward_model=str(tiny_reward_models["scalar"])))
    probe = bench.eval[1]
    rewards = [r[0] for r in method.rewards(probe)]
    assessment = method.assess(probe, [])
    assert assessment.choice == rewards.index(max(rewards))
    assert method.assess(probe, []).choice == assessment.choice  # deterministic


def test_reward_model_multi_objective(helpsteer2_dir: Path, tiny_reward_models):
    bench = load_benchmark(helpsteer2_dir)
    method = build_method("reward-model", Settings(reward_model=str(tiny_reward_models["multi"])))
    preds = method.assess(bench.eval[2], [R["helpfulness"], R["verbosity"]]).predictions
    assert preds is not None and all(0 < p["verbosity"] < 1 for p in preds)
    with pytest.raises(Exception, match="no output for care"):
        method.assess(bench.eval[2], [R["care"]])
