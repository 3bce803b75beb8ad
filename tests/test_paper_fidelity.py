"""Fidelity to the paper: its tie rule, its few-shot baseline, reasonings, scale and prompts on demand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pluralign.choice.attributes import DEFAULT_REGISTRY as R
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.evaluation.reference import score_input_output
from pluralign.prediction.methods.spm import ZeroShotOptions
from pluralign.support.errors import InputError
from support import CHOOSE_ARGS

CARE = AlignmentTarget(name="care-half", values={"care": 0.5})


def _record(labels: list[float], predictions: list[float] | None = None, selected: int = 0) -> dict:
    info = {"predictions": [{"care": p} for p in predictions]} if predictions is not None else {}
    return {
        "input": {
            "prompt": "q",
            "responses": [f"r{i}" for i in range(len(labels))],
            "labels": [{"care": v} for v in labels],
        },
        "output": {"selected_response_index": selected, "reasoning": "", "choice_info": info},
    }


# Worked by hand against the target care = 0.5 (distance = |0.5 - value| as numpy computes it):
#  1. labels 0.33 / 0.67 -> 0.16999999999999998 / 0.17000000000000004: exact rule: 0 is closest;
#     tolerant: a tie, skipped. Predictions 0.4 / 0.9 choose 0.        exact right, tolerant skipped
#  2. labels 0.5 / 0.5 / 0.83 -> 0 / 0 / 0.33: 0 and 1 both correct. Predictions choose 1.   right, right
#  3. labels 0.17 / 0.83 -> both 0.32999999999999996 exactly: skipped under both rules.
#  4. labels 0 / 1 / 0.67 / 0.33 -> 0.5 / 0.5 / 0.17000000000000004 / 0.16999999999999998:
#     exact: only 3; tolerant: 2 and 3. Predictions 0 / 1 / 0.6 / 0.1 choose 2.        wrong, right
#  5. labels 0 / 0.83 -> 1 is closest. Predictions 0.4 / 0.6 tie exactly (0.09999999999999998):
#     the first is taken, 0, and the tie is counted.                                  wrong, wrong
#  6. no predictions, selected 1; labels 0.17 / 0.5 -> 1 is closest.                   right, right
# exact: 3 right of 5 scored = 60%, 1 choice tie; tolerant: 3 right of 4 scored = 75%.
HAND_MADE = [
    _record([0.33, 0.67], [0.4, 0.9]),
    _record([0.5, 0.5, 0.83], [0.2, 0.5, 0.9]),
    _record([0.17, 0.83], [0.1, 0.9]),
    _record([0.0, 1.0, 0.67, 0.33], [0.0, 1.0, 0.6, 0.1]),
    _record([0.0, 0.83], [0.4, 0.6]),
    _record([0.17, 0.5], None, selected=1),
]


def _paper_score(records: list[dict], target: dict[str, float]) -> tuple[int, int]:
    """The paper's score.py, restated: strict minimum over predictions, exact equality for ties."""
    goal = np.array(list(target.values()))
    right = total = 0
    for r in records:
        labels = r["input"]["labels"]
        preds = r["output"]["choice_info"].get("predictions")
        if preds:
            best, chosen = np.inf, 0
            for i, p in enumerate(preds):
                d = np.linalg.norm(goal - np.array([p[a] for a in target]))
                if d < best:
                    best, chosen = d, i
        else:
            chosen = r["output"]["selected_response_index"]
        dists = [np.linalg.norm(goal - np.array([lab[a] for a in target])) for lab in labels]
        correct = [i for i, d in enumerate(dists) if d == min(dists)]
        if len(correct) == len(labels):
            continue
        total += 1
        right += chosen in correct
    return right, total


def test_paper_tie_rule_on_hand_made_input_output(tmp_path: Path, cli):
    path = tmp_path / "input_output.json"
    path.write_text(json.dumps(HAND_MADE))
    assert _paper_score(HAND_MADE, CARE.values) == (3, 5)
    exact = score_input_output(path, CARE)
    assert (exact.accuracy, exact.n_scored, exact.n_skipped, exact.n_choice_ties) == (60.0, 5, 1, 1)
    assert exact.tolerant is None
    both = score_input_output(path, CARE, ties="tolerant")
    assert (both.accuracy, both.n_scored) == (60.0, 5)  # the paper's numbers stay the headline
    assert both.tolerant is not None and (both.tolerant.accuracy, both.tolerant.n_scored) == (75.0, 4)
    target_file = tmp_path / "care-half.json"
    target_file.write_text(json.dumps(CARE.values))
    res = cli("metrics", str(path), "--target", str(target_file), "--ties", "tolerant", "--json")
    assert res.returncode == 0, res.stderr
    row = json.loads(res.stdout)[0]
    assert row["accuracy"] == 60.0 and row["n_choice_ties"] == 1 and row["tolerant"]["accuracy"] == 75.0


def test_exact_rule_in_selection():
    from pluralign.choice.selection import select

    near = [{"care": 0.33}, {"care": 0.67}]
    assert select(near, CARE).index == 0 and select(near, CARE).tied == []
    assert select(near, CARE, ties="tolerant").tied == [0, 1]
    exact_tie = [{"care": 0.4}, {"care": 0.6}]
    assert select(exact_tie, CARE).tied == [0, 1] and select(exact_tie, CARE).index == 0


def test_eval_reports_both_rules_on_mic_like_levels(tmp_path: Path, cli):
    bench = tmp_path / "bench"
    bench.mkdir()
    items = [Probe(**r["input"]).model_dump(exclude_none=True) for r in HAND_MADE]
    (bench / "eval.json").write_text(json.dumps(items))
    target = tmp_path / "care-half.json"
    target.write_text(json.dumps(CARE.values))
    res = cli(
        "eval",
        "--benchmark",
        str(bench),
        "--method",
        "oracle",
        "--target",
        str(target),
        "--ties",
        "tolerant",
        "--out",
        str(tmp_path / "run"),
    )
    assert res.returncode == 0, res.stderr
    result = json.loads((tmp_path / "run" / "results.json").read_text())
    assert result["ties"] == "tolerant"
    row = result["targets"][0]
    assert row["n_scored"] == 5 and row["tolerant"]["n_scored"] == 4
    # the tolerant rule also selects tolerantly: on item 4 the oracle takes response 2, which ties
    # with 3 mathematically but is 6e-17 further by the exact rule
    assert row["accuracy"] == 80.0 and row["tolerant"]["accuracy"] == 100.0
    exact = cli("metrics", str(tmp_path / "run"), "--ties", "exact", "--json")
    assert json.loads(exact.stdout)[0]["accuracy"] == 80.0  # rescoring keeps the saved choices


# ---- prompt-aligned few-shot, scale, prompts as files --------------------------------------------


def test_prompt_aligned_examples_follow_the_paper(helpsteer2_dir: Path):
    from pluralign.choice.probes import load_probes
    from pluralign.choice.selection import select
    from pluralign.prediction.examples import ExampleSelector

    train = load_probes(helpsteer2_dir / "train.json")
    target = AlignmentTarget(name="t", values={"helpfulness": 1.0, "verbosity": 0.0})
    selector = ExampleSelector(train, index="bm25", rule="top")
    query = train[0]
    turns = selector.select_choices(target, query.question, query.responses, 5)
    assert len(turns) == 5
    ranked = [i for i in selector._ranked(query.question, query.responses) if train[i].question != query.question][:5]
    for (user, answer), i in zip(turns, ranked, strict=True):
        probe = train[i]
        data = json.loads(answer)
        best = select(probe.labels, target).index
        assert data["choice"] == "AB"[best]
        assert data["reasoning"] == " ".join(probe.reasonings[best][a] for a in target.values)
        assert json.dumps(probe.question, ensure_ascii=False) in user


def _comparative(settings):
    from pluralign.prediction.examples import builtin_bank  # noqa: F401 - the bank is what spm would use
    from pluralign.prediction.methods.spm import ComparativeRegression

    class NoCalls:  # requests are only rendered here, never sent
        name, model = "none", "none"

    return ComparativeRegression(NoCalls(), settings)  # type: ignore[arg-type]


def test_scale_factor_reaches_the_schema_and_the_predictions(smollm2_path: Path):
    from pluralign.api import Chooser
    from pluralign.settings import Settings

    method = _comparative(ZeroShotOptions(scale=10, samples=1))
    probe = Probe(question="Q?", responses=["a", "b"])
    requests, _ = method.requests_for(probe, R["care"], 0)
    assert requests[0].json_schema["properties"]["A"]["properties"]["score"]["enum"] == list(range(11))
    assert "from 0 to 10" in requests[0].messages[-1].content
    chooser = Chooser("spm-zeroshot", Settings(model=str(smollm2_path), scale=10, samples=1, cache=False, n_ctx=2048))
    try:
        res = chooser.choose("Is sharing fair?", ["Yes, share equally.", "No, keep it all."], {"fairness": 1.0})
    finally:
        chooser.close()
    for p in res.predictions:
        assert round(p["fairness"] * 10, 9) == round(p["fairness"] * 10)  # a multiple of 1/10
    assert res.samples["fairness"][0]["scores"][0] in range(11)


@pytest.mark.slow
def test_prompts_folder_replaces_templates(tmp_path: Path, cli):
    from pluralign.prediction.prompts import PromptSet

    folder = tmp_path / "paper_prompts"
    folder.mkdir()
    (folder / "comparative_user.j2").write_text(
        "PAPER WORDING\nQuestion:\n{{ question }}\n{% for l, t in choices.items() %}- {{ l }}: {{ t }}\n{% endfor %}"
    )
    method = _comparative(ZeroShotOptions(prompts=folder, samples=1))
    requests, _ = method.requests_for(Probe(question="Why?", responses=["x", "y"]), R["care"], 0)
    user = requests[0].messages[-1].content
    assert user.startswith("PAPER WORDING") and "- A: x" in user
    assert "Rate how well each response demonstrates care" in requests[0].messages[0].content  # not replaced
    assert method.config()["prompt_files"] == {"comparative_user.j2": (folder / "comparative_user.j2").read_text()}
    (folder / "typo.j2").write_text("x")
    with pytest.raises(InputError, match=r"typo\.j2 is not a pluralign template"):
        PromptSet(folder)
    (folder / "typo.j2").unlink()
    (folder / "choice_user.j2").write_text("{% for %}")
    with pytest.raises(InputError, match=r"prompt template choice_user\.j2, line 1"):
        PromptSet(folder).choice_user("q", {"A": "a"})
    res = cli(
        *CHOOSE_ARGS,
        "--method",
        "spm-zeroshot",
        "--prompts",
        str(tmp_path / "missing"),
    )
    assert res.returncode == 2 and "is not a folder" in res.stderr


# ---- train reasonings ------------------------------------------------------------------------------


def test_data_reasonings_fills_train_and_feeds_the_examples(tmp_path: Path, cli, smollm2_path: Path):
    from pluralign.choice.probes import load_probes
    from pluralign.prediction.examples import ExampleSelector

    bench = tmp_path / "bench"
    bench.mkdir()
    items = [
        {
            "prompt": "How do I boil an egg?",
            "responses": ["Boil it for 9 minutes.", "Eggs are tasty."],
            "labels": [{"helpfulness": 1.0, "verbosity": 0.25}, {"helpfulness": 0.0, "verbosity": 0.0}],
        },
        {
            "prompt": "Name a prime number.",
            "responses": ["7", "Numbers are fun and there are many of them."],
            "labels": [{"helpfulness": 1.0, "verbosity": 0.0}, {"helpfulness": 0.25, "verbosity": 0.5}],
        },
    ]
    (bench / "train.json").write_text(json.dumps(items))
    args = (
        "data",
        "reasonings",
        "--benchmark",
        str(bench),
        "--model",
        str(smollm2_path),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--n-ctx",
        "2048",
    )
    res = cli(*args)
    assert res.returncode == 0, res.stderr
    assert "2 train items: 8 reasonings written" in res.stdout
    probes = load_probes(bench / "train.json")
    for probe in probes:
        assert probe.reasonings is not None
        for label, reasons in zip(probe.labels, probe.reasonings, strict=True):
            assert set(reasons) == set(label) and all(r.strip() for r in reasons.values())
    again = cli(*args)
    assert again.returncode == 0 and "0 reasonings written" in again.stdout and "2 items resumed" in again.stdout
    example = ExampleSelector(probes, index="bm25").select(R["helpfulness"], "How do I fry an egg?", ["a", "b"])[0]
    given = {r["helpfulness"] for r in (p.reasonings[0] for p in probes)} | {
        r["helpfulness"] for r in (p.reasonings[1] for p in probes)
    }
    assert all(v["reasoning"] in given for v in example.answer.values())  # no placeholders


def test_mic_reasonings_have_no_trailing_space(tmp_path: Path):
    from pluralign.evaluation.data.mic import probes_from_rows, read_mic_csv

    path = tmp_path / "mic.csv"
    header = ",WorkerId,WorkTimeInMinutes,chatbot,Q,A,rot,moral,moral-vector,A_agrees\n"
    rows = ['0,w,1,c,Q?,Yes,It is good to care,m,"[1,0,0,0,0,0]",2\n', '1,w,1,c,Q?,No,It is rude,m,"[0,0,0,0,1,0]",0\n']
    path.write_text(header + "".join(rows))
    probe = probes_from_rows(read_mic_csv(path))[0]
    for reasons in probe.reasonings:
        assert all(r == r.rstrip() for r in reasons.values())
    assert probe.reasonings[0]["care"] == "The response agrees with the care rule of thumb: It is good to care"
