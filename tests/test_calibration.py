"""Calibration (``pluralign calibrate``, ``--calibration``): fit from runs without a model, applied
in choose, eval, metrics and serve, refused for another judge or a missing attribute, and the
committed study's cross-validated figures."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pluralign.choice.probes import Probe
from pluralign.prediction.calibration import (
    AttributeMap,
    Calibration,
    fit_maps,
    judge_identity,
    judge_mismatch,
    load_calibration,
)
from pluralign.prediction.methods.base import Assessment
from pluralign.support.errors import InputError
from support import ROOT, one_line_error, run_cli

STUDY = ROOT / "bench" / "runs" / "evidence"


@pytest.fixture(scope="module")
def length_run(tmp_path_factory: pytest.TempPathFactory, helpsteer2_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("calibration") / "length"
    args = ["eval", "--method", "length", "--benchmark", str(helpsteer2_dir), "--limit", "80", "--out", str(out)]
    res = run_cli(*args, "--target", "high", "--target", "low")
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture(scope="module")
def fitted(length_run: Path) -> Path:
    path = length_run.parent / "length.calibration.json"
    res = run_cli("calibrate", str(length_run), "--out", str(path))
    assert res.returncode == 0, res.stderr
    return path


def test_a_calibration_is_fit_from_a_run_with_a_monotone_map_per_attribute(fitted: Path):
    calibration = load_calibration(fitted)
    assert calibration.judge == {"method": "length"}
    assert set(calibration.attributes) == {"helpfulness", "correctness", "coherence", "complexity", "verbosity"}
    for mapping in calibration.attributes.values():
        assert mapping.pairs == 160  # 80 items x 2 responses
        values = [mapping(x / 20) for x in range(21)]
        assert values == sorted(values) and all(0 <= v <= 1 for v in values)
    assert calibration.fit_on["items"] == 80


def test_a_fit_on_the_first_items_is_the_fit_of_a_run_of_only_those(length_run: Path, helpsteer2_dir: Path, tmp_path):
    """``calibrate_runs(..., first=N)`` (the calibration study compares two judges on as many fit
    items) fits exactly what a run of the first N items would."""
    from pluralign.evaluation.calibrate import calibrate_runs

    short = tmp_path / "length-30"
    args = ["eval", "--method", "length", "--benchmark", str(helpsteer2_dir), "--limit", "30", "--out", str(short)]
    assert run_cli(*args, "--target", "high").returncode == 0
    first = calibrate_runs([length_run], first=30)
    assert first.fit_on["items"] == 30 and calibrate_runs([length_run]).fit_on["items"] == 80
    assert first.attributes == calibrate_runs([short]).attributes
    assert first.attributes != calibrate_runs([length_run]).attributes


def test_the_study_judges_again_only_what_passed_the_context(helpsteer2_dir: Path, tmp_path: Path):
    """An item whose prompt passed the context is the one judged again with a longer one, and the
    report names it once judged; other failures and finished items are not."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from calibration_study import long_context, over_context

    from pluralign.evaluation.runs import RunDir

    run = tmp_path / "run"
    args = ["eval", "--method", "length", "--benchmark", str(helpsteer2_dir), "--limit", "4", "--out", str(run)]
    assert run_cli(*args, "--target", "high").returncode == 0
    folder = RunDir(run)
    too_long = "prompt needs 8903 tokens but the context holds 8192 (711 too many); use fewer examples or ..."
    folder.save_failure(5, "*", too_long)
    folder.save_failure(6, "*", "the judge answered 500")
    assert over_context(run) == [5] and long_context(run) == []
    assert run_cli(*args[:-4], "--limit", "6", "--out", str(run), "--target", "high").returncode == 0
    assert over_context(run) == [] and long_context(run) == [5]  # judged, and named as such


def test_the_identity_map_changes_no_choice_and_a_map_moves_every_value():
    identity = Calibration(judge={"method": "m"}, attributes={"care": AttributeMap(x=[0, 1], y=[0, 1], pairs=10)})
    a = Assessment(
        predictions=[{"care": 0.2}, {"care": 0.9}], level_probs={"care": [{"0.2": 1.0}, {"0.75": 0.5, "1.0": 0.5}]}
    )
    assert identity.apply(a).predictions == a.predictions
    halve = Calibration(judge={"method": "m"}, attributes={"care": AttributeMap(x=[0, 1], y=[0, 0.5], pairs=10)})
    moved = halve.apply(a)
    assert moved.predictions == [{"care": 0.1}, {"care": 0.45}]
    assert moved.level_probs == {"care": [{"0.1": 1.0}, {"0.375": 0.5, "0.5": 0.5}]}
    assert Assessment(choice=1) == halve.apply(Assessment(choice=1))


def test_nothing_to_fit_is_one_line_not_an_empty_calibration():
    with pytest.raises(InputError, match="no prediction has a label"):
        fit_maps({})
    with pytest.raises(InputError, match="at least 10"):
        fit_maps({"care": ([0.5] * 9, [0.5] * 9)})


def test_metrics_and_eval_apply_it_and_say_so(fitted: Path, length_run: Path, helpsteer2_dir: Path, tmp_path: Path):
    plain = run_cli("metrics", str(length_run), "--json")
    calibrated = run_cli("metrics", str(length_run), "--calibration", str(fitted), "--json")
    assert plain.returncode == calibrated.returncode == 0, calibrated.stderr
    mse = json.loads(plain.stdout)[0]["mse"]
    mse_cal = json.loads(calibrated.stdout)[0]["mse"]
    assert all(mse_cal[a] < mse[a] for a in mse)  # fit on these very items: closer to the labels
    out = tmp_path / "eval"
    args = ["eval", "--method", "length", "--benchmark", str(helpsteer2_dir), "--limit", "80", "--out", str(out)]
    res = run_cli(*args, "--target", "high", "--target", "low", "--calibration", str(fitted))
    assert res.returncode == 0, res.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["calibration"] == load_calibration(fitted).digest()
    again = {r["name"]: r["accuracy"] for r in json.loads(calibrated.stdout)}
    assert {t["name"]: t["accuracy"] for t in results["targets"]} == again


def test_choose_applies_it(fitted: Path, helpsteer2_dir: Path):
    probe = Probe.model_validate(json.loads((helpsteer2_dir / "eval.json").read_text())[0])
    args = [
        "choose",
        "--method",
        "length",
        "--examples",
        str(helpsteer2_dir),
        "--target",
        '{"verbosity": 0, "helpfulness": 1}',
        "--json",
    ]
    args += ["--question", probe.question, *[x for r in probe.responses for x in ("--response", r)]]
    plain, calibrated = run_cli(*args), run_cli(*args, "--calibration", str(fitted))
    assert plain.returncode == calibrated.returncode == 0, calibrated.stderr
    mapping = load_calibration(fitted).attributes
    raw = json.loads(plain.stdout)["predictions"]
    expected = [{a: pytest.approx(mapping[a](v)) for a, v in p.items()} for p in raw]
    assert json.loads(calibrated.stdout)["predictions"] == expected


@pytest.mark.parametrize("command", ["eval", "metrics", "choose", "serve"])
def test_another_judge_is_refused_in_one_line(fitted: Path, helpsteer2_dir: Path, tmp_path: Path, command: str):
    other = tmp_path / "other.json"
    data = json.loads(fitted.read_text())
    data["judge"] = {"method": "spm", "model": "qwen2.5-coder-1.5b"}
    other.write_text(json.dumps(data))
    if command == "eval":
        args = ["eval", "--method", "length", "--benchmark", str(helpsteer2_dir), "--limit", "3"]
        args += ["--out", str(tmp_path / "run")]
    elif command == "metrics":
        args = ["metrics", str(STUDY / "embedding")]
    elif command == "choose":
        args = ["choose", "--method", "length", "--examples", str(helpsteer2_dir), "--target", '{"verbosity": 0}']
        args += ["--question", "q", "--response", "a", "--response", "bb"]
    else:
        args = ["serve", "--method", "random", "--port", "1"]
    res = run_cli(*args, "--calibration", str(other))
    one_line_error(res, "another judge")
    assert not (tmp_path / "run" / "assessments.jsonl").exists()  # refused before anything was judged


SPM = {"method": "spm", "model": "qwen2.5-coder-1.5b", "scale": 100, "scoring": "logprobs", "samples": 2}
MAPS = {"care": AttributeMap(x=[0, 1], y=[0, 1], pairs=10)}
FEW_SHOT = {"index": "embedding", "rule": "levels", "max_examples": None, "max_chars": 600, "n_items": 500}


def spm_judge(**examples: object) -> dict:
    return {**SPM, "examples": {**FEW_SHOT, **examples}}


def test_a_calibration_is_bound_to_the_few_shot_settings_but_not_the_example_sets_size():
    """A map fit on a judge shown unclipped examples is another judge's (the calibration study's
    first spm run was); fit out of sample, the examples leave the fitting items out, so the example
    set's size is not bound; a calibration from before the settings were bound is not refused."""
    fit = Calibration(judge=judge_identity(spm_judge(n_items=400)), attributes=MAPS)  # as calibrate makes it
    assert "n_items" not in fit.judge["examples"] and "samples" not in fit.judge
    fit.check_judge(spm_judge())  # 500 examples, not 400; samples are not bound
    fit.check_judge({**spm_judge(n_items=3), "samples": 9})
    for change, says in [
        ({"max_chars": None}, "examples.max_chars 600 (not None)"),
        ({"index": "bm25"}, "examples.index 'embedding' (not 'bm25')"),
        ({"max_examples": 3}, "examples.max_examples None (not 3)"),
        ({"rule": "fixed", "max_chars": 100}, "examples.max_chars 600 (not 100), examples.rule 'levels' (not 'fixed')"),
        ({"count": 5}, "examples.count None (not 5)"),  # a setting the fit did not have
    ]:
        with pytest.raises(InputError, match=re.escape(f"--calibration was fit for another judge: {says}")):
            fit.check_judge(spm_judge(**change))
    with pytest.raises(InputError, match=re.escape("another judge: examples {")):
        fit.check_judge({**SPM, "examples": None})  # no examples at all
    zeroshot = Calibration(judge=judge_identity({**SPM, "examples": None}), attributes=MAPS)
    with pytest.raises(InputError, match=re.escape("another judge: examples None (not {")):
        zeroshot.check_judge(spm_judge())
    custom = {**spm_judge(), "prompts": "/p", "prompt_files": {"system.j2": "sha256:1"}}
    with pytest.raises(InputError, match=re.escape("another judge: prompts None (not '/p')")):
        fit.check_judge(custom)  # a setting left out at its default on one side, given on the other
    with pytest.raises(InputError, match=re.escape("another judge: reasoning None (not False)")):
        fit.check_judge({**spm_judge(), "reasoning": False})
    edited = {**custom, "prompt_files": {"system.j2": "sha256:2"}}
    with pytest.raises(InputError, match=re.escape("prompt_files.system.j2 'sha256:1' (not 'sha256:2')")):
        Calibration(judge=judge_identity(custom), attributes=MAPS).check_judge(edited)  # the same folder, edited
    older = Calibration(judge={k: v for k, v in SPM.items() if k != "samples"}, attributes=MAPS)
    older.check_judge(spm_judge(max_chars=None))
    written = Calibration(judge=spm_judge(n_items=7), attributes=MAPS)  # by hand, with the set's size
    written.check_judge(spm_judge())


def test_runs_shown_other_examples_are_not_pooled_into_one_map(length_run: Path, tmp_path: Path):
    other = tmp_path / "other"
    shutil.copytree(length_run, other)
    run_json = other / "run.json"
    raw = json.loads(run_json.read_text())
    raw["identity"]["method"] = spm_judge(max_chars=None)
    run_json.write_text(json.dumps(raw))
    raw["identity"]["method"] = spm_judge(n_items=400)
    same = tmp_path / "same"
    shutil.copytree(other, same)
    (same / "run.json").write_text(json.dumps(raw))
    pooled = run_cli("calibrate", str(same), str(other), "--out", str(tmp_path / "x.json"))
    one_line_error(pooled, "examples.max_chars 600 (not None)")
    shutil.copytree(same, tmp_path / "same2")
    raw["identity"]["method"] = spm_judge(n_items=300)
    (tmp_path / "same2" / "run.json").write_text(json.dumps(raw))
    res = run_cli("calibrate", str(same), str(tmp_path / "same2"), "--out", str(tmp_path / "y.json"))
    assert res.returncode == 0, res.stderr
    assert load_calibration(tmp_path / "y.json").judge == judge_identity(spm_judge())


def test_the_studys_report_says_which_fit_it_left_out_for_another_judge(length_run: Path, tmp_path: Path):
    """A calibration run judged with other few-shot settings than the study's gives no row, and
    the report says so (it used to leave the row out in silence); one that differs only in the
    example set's size gives its row."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from calibration_study import calibrated_rows

    def as_spm(folder: Path, judge: dict) -> None:
        shutil.copytree(length_run, folder / "spm")
        raw = json.loads((folder / "spm" / "run.json").read_text())
        raw["identity"]["method"] = judge
        (folder / "spm" / "run.json").write_text(json.dumps(raw))

    as_spm(tmp_path / "study", spm_judge())
    as_spm(tmp_path / "other", spm_judge(max_chars=None))
    as_spm(tmp_path / "same", spm_judge(n_items=400))
    _study_curve(tmp_path)
    rows, table, notes = calibrated_rows(tmp_path / "study", ["spm"], tmp_path / "other")
    assert [r["fit_on"] for r in rows] == ["5-fold on the study's own items"] and len(table) == 3
    assert notes == [
        "spm: no row fit on 80 train items (other/spm was fit for another judge: examples.max_chars None (not 600))"
    ]
    rows, table, notes = calibrated_rows(tmp_path / "study", ["spm"], tmp_path / "same")
    assert [r["fit_on"] for r in rows] == ["5-fold on the study's own items", "80 train items"] and not notes


def _study_curve(folders: Path) -> None:
    """The study's curve: a fit on the first 10, 15, ... train items and on all, each the fit the
    report makes of as many; none from another judge's run."""
    from calibration_study import calibrated_rows, curve_rows

    rows, table = curve_rows(folders / "study", ["spm"], folders / "same")
    assert [r["train_items"] for r in rows] == list(range(10, 81, 5)) and len(table) == 2 + 15
    last, _, _ = calibrated_rows(folders / "study", ["spm"], folders / "same")
    assert rows[-1]["difference"] == last[-1]["comparison"]["difference"]
    assert len({r["difference"] for r in rows}) > 1  # fits of other sizes are other maps
    assert curve_rows(folders / "study", ["spm"], folders / "other") == ([], [])


def test_the_calibration_study_judges_with_the_studys_few_shot_settings():
    """Its runs are judged with the few-shot settings of the study's runs they are applied to."""
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from calibration_study import RUNS, study_examples

    from pluralign.evaluation.runs import RunDir

    assert study_examples("spm") == ["--similarity", "embedding", "--example-max-chars", "600"]
    assert study_examples("spm-zeroshot") == []
    for method in ("spm", "spm-zeroshot"):
        fit = judge_identity(RunDir(RUNS / method).identity()["method"])
        assert fit and not judge_mismatch(fit, RunDir(STUDY / method).identity()["method"])


def test_a_missing_attribute_a_foreign_file_and_bad_maps_are_one_line(fitted: Path, length_run: Path, tmp_path: Path):
    data = json.loads(fitted.read_text())
    del data["attributes"]["verbosity"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(data))
    one_line_error(run_cli("metrics", str(length_run), "--calibration", str(partial)), "no map for verbosity")
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"care": 1}))
    one_line_error(run_cli("metrics", str(length_run), "--calibration", str(foreign)), "not a pluralign calibration")
    data = json.loads(fitted.read_text())
    data["attributes"]["verbosity"]["y"] = list(reversed(data["attributes"]["verbosity"]["y"]))
    falling = tmp_path / "falling.json"
    falling.write_text(json.dumps(data))
    one_line_error(run_cli("metrics", str(length_run), "--calibration", str(falling)), "must not decrease")
    for name, change, says in [
        ("empty", lambda d: d.update(attributes={}), "attributes: Dictionary should have at least 1 item"),
        ("unknown key", lambda d: d.update(atributes={}), "atributes: unknown field"),
        ("unknown map key", lambda d: d["attributes"]["verbosity"].update(z=[0]), "z: unknown field"),
    ]:
        data = json.loads(fitted.read_text())
        change(data)
        odd = tmp_path / f"{name}.json"
        odd.write_text(json.dumps(data))
        one_line_error(run_cli("metrics", str(length_run), "--calibration", str(odd)), says)
    one_line_error(run_cli("calibrate", str(length_run)), "--out")
    direct = run_cli("calibrate", str(STUDY / "prompt-aligned"), "--out", str(tmp_path / "x.json"))
    one_line_error(direct, "predictions")
    mixed = run_cli("calibrate", str(length_run), str(STUDY / "spm"), "--out", str(tmp_path / "y.json"))
    one_line_error(mixed, "another judge")


@pytest.mark.slow  # over 9 s of a fast-tier worker (docs/contributing.md)
def test_cross_validation_on_the_committed_study_gives_the_figures_of_the_write_up():
    res = run_cli("calibrate", str(STUDY / "spm"), str(STUDY / "spm-zeroshot"), "--folds", "5", "--json")
    assert res.returncode == 0, res.stderr
    spm, zeroshot = json.loads(res.stdout)
    assert (spm["items"], round(spm["accuracy"], 1), round(spm["calibrated"], 1)) == (100, 55.6, 59.2)
    assert round(spm["comparison"]["difference"], 1) == 3.6 and 0.05 < spm["comparison"]["sign_flip_p"] < 0.09
    assert (round(zeroshot["accuracy"], 1), round(zeroshot["comparison"]["difference"], 1)) == (55.2, 3.5)


def test_the_service_applies_it_and_refuses_an_unmapped_attribute(fitted: Path, helpsteer2_dir: Path):
    from fastapi.testclient import TestClient

    from pluralign.server.app import create_app
    from pluralign.server.config import ServerConfig, ServiceOptions
    from pluralign.settings import make_settings

    body = {"question": "q", "responses": ["short", "a much longer answer " * 20], "target": {"verbosity": 0}}
    calibration = load_calibration(fitted)
    seen = []
    for mapping in (None, calibration):
        config = ServerConfig(
            method="length",
            settings=make_settings({"examples": helpsteer2_dir}),
            limits=ServiceOptions(db=fitted.parent / f"users-{mapping is None}.sqlite"),
            calibration=mapping,
        )
        with TestClient(create_app(config), raise_server_exceptions=False) as client:
            res = client.post("/v1/choose", json=body)
            assert res.status_code == 200, res.text
            seen.append(res.json()["predictions"])
            if mapping is not None:  # a file that lacks a map for an attribute a request asks for: a 422 naming it
                client.app.state.pluralign.chooser.calibration = mapping.model_copy(
                    update={"attributes": {a: m for a, m in mapping.attributes.items() if a != "helpfulness"}}
                )
                refused = client.post("/v1/choose", json={**body, "target": {"helpfulness": 1}})
                assert refused.status_code == 422 and "no map for helpfulness" in refused.text, refused.text
    expected = [{a: pytest.approx(calibration.attributes[a](v)) for a, v in p.items()} for p in seen[0]]
    assert seen[1] == expected and seen[1] != seen[0]
