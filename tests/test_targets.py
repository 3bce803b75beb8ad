"""Attributes and targets: descriptions, files, sampling as the paper did."""

import json
from pathlib import Path

import pytest

from pluralign.choice.attributes import DEFAULT_REGISTRY, HELPSTEER2, MIC, load_attribute_file
from pluralign.choice.target_data import load_profile_file as load_target_file
from pluralign.choice.target_data import profile_from_data as target_from_data
from pluralign.choice.target_data import resolve_target_specs
from pluralign.choice.targets import AlignmentTarget, sample_targets
from pluralign.support.errors import InputError


def test_builtin_attributes_have_descriptions_and_levels():
    assert [a for a in DEFAULT_REGISTRY] == [*HELPSTEER2, *MIC]
    assert DEFAULT_REGISTRY["verbosity"].levels == 5
    assert DEFAULT_REGISTRY["care"].level_values() == [0.0, 0.17, 0.33, 0.5, 0.67, 0.83, 1.0]
    for name in DEFAULT_REGISTRY:
        text = DEFAULT_REGISTRY[name].description
        assert "high score" in text and "low score" in text


def test_user_attributes_json_and_yaml(tmp_path: Path):
    (tmp_path / "a.yaml").write_text("humor:\n  description: Funny or not.\n  levels: 3\n")
    (tmp_path / "b.json").write_text(json.dumps([{"name": "brevity", "description": "Short."}]))
    reg = DEFAULT_REGISTRY.with_file(tmp_path / "a.yaml").with_file(tmp_path / "b.json")
    assert reg["humor"].levels == 3 and reg["brevity"].levels == 5
    target = target_from_data({"humor": 0.5, "care": 1}, "t", reg)
    assert target.values == {"humor": 0.5, "care": 1.0}
    (tmp_path / "bad.json").write_text(json.dumps([{"name": "x y", "description": "d"}]))
    with pytest.raises(InputError, match="attribute #1"):
        load_attribute_file(tmp_path / "bad.json")
    # a misspelt field: once dropped, and the attribute read with 5 levels
    (tmp_path / "typo.yaml").write_text("humor:\n  description: Funny or not.\n  levles: 3\n")
    (tmp_path / "typo.json").write_text(json.dumps([{"name": "brevity", "description": "Short.", "level": 3}]))
    for name, field in (("typo.yaml", "levles"), ("typo.json", "level")):
        with pytest.raises(InputError, match=f"attribute #1: {field}: unknown field"):
            load_attribute_file(tmp_path / name)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"kindness": 1.0}, "unknown attribute 'kindness'"),
        ({"care": 1.3}, "outside \\[0, 1\\]"),
        ({"care": -0.1}, "outside \\[0, 1\\]"),
        ({}, "empty"),
        ({"care": "high"}, "must be a number"),
        ({"care": True}, "must be a number"),
        ([1, 2], "expected a JSON object"),
        ({"values": {"care": 1}, "wieghts": {"care": 2}}, "unknown field 'wieghts'"),  # once: weights 1
        ({"values": {"care": 1}, "weight": 2}, "unknown field 'weight'"),  # a member's, not a target's
    ],
)
def test_bad_targets_rejected(raw, message):
    with pytest.raises(InputError, match=message):
        target_from_data(raw, "t")


def test_weights_and_full_form(tmp_path: Path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"values": {"care": 1.0, "authority": 0.17}, "weights": {"care": 2}}))
    target = load_target_file(path)
    assert target.name == "w" and target.weight("care") == 2 and target.weight("authority") == 1
    with pytest.raises(InputError, match="weights name attributes not in the target"):
        target_from_data({"values": {"care": 1.0}, "weights": {"fairness": 1}}, "t")


def test_target_file_not_json(tmp_path: Path):
    path = tmp_path / "t.json"
    path.write_text("{care: 1}")
    with pytest.raises(InputError, match="not valid JSON"):
        load_target_file(path)


def test_resolve_specs(targets_dir: Path):
    targets = resolve_target_specs(["high", "low", str(targets_dir / "sampled_helpsteer2")], list(HELPSTEER2))
    assert len(targets) == 52
    assert targets[0].values == dict.fromkeys(HELPSTEER2, 1.0)
    with pytest.raises(InputError, match="not a file"):
        resolve_target_specs(["nope.json"], list(HELPSTEER2))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_sampling_reproduces_paper_helpsteer2(targets_dir: Path, k: int):
    sampled = sample_targets(list(HELPSTEER2), 5, k, 10, seed=42)
    for i, values in enumerate(sampled):
        published = json.loads((targets_dir / "sampled_helpsteer2" / f"{k}attributes_target{i:02d}.json").read_text())
        assert values == published and list(values) == list(published)
        assert 0.5 not in values.values()


@pytest.mark.parametrize("k", [1, 3, 6])
def test_sampling_reproduces_paper_mic(targets_dir: Path, k: int):
    sampled = sample_targets(list(MIC), 7, k, 10, seed=42)
    for i, values in enumerate(sampled):
        published = json.loads((targets_dir / "sampled_mic" / f"{k}attributes_target{i:02d}.json").read_text())
        assert values == published


def test_target_is_immutable_model():
    t = AlignmentTarget(values={"care": 1.0})
    with pytest.raises(ValueError):
        t.values = {}  # type: ignore[misc]
