"""Profiles: learn a profile from choices, ask the next question, explain every decision."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pluralign.choice.attributes import DEFAULT_REGISTRY as R
from pluralign.choice.explanation import attribute_shares, confidence, explain_choice, lead
from pluralign.choice.probes import load_probes
from pluralign.choice.selection import select
from pluralign.choice.target_data import load_profile_file as load_target_file
from pluralign.choice.targets import AlignmentTarget
from pluralign.people.profile import ChoiceRecord, Grid, builtin_pool, fit_profile, read_choices
from pluralign.people.questions import next_question
from pluralign.support.errors import InputError

HS2 = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


def _records(probes, target: AlignmentTarget, picks: list[int], flip: float = 0.0, seed: int = 0):
    rng = random.Random(seed)
    out = []
    for i in picks:
        p = probes[i]
        chosen = select(p.labels, target, "euclidean").index
        if rng.random() < flip:
            chosen = 1 - chosen
        out.append(
            ChoiceRecord(id=f"t{i}", question=p.question, responses=p.responses, chosen=chosen, predictions=p.labels)
        )
    return out


def _agreement(fitted: AlignmentTarget, truth: AlignmentTarget, probes) -> float:
    right = total = 0
    for p in probes:
        true_choice = select(p.labels, truth, "euclidean")
        if len(true_choice.tied) == len(p.labels):
            continue
        total += 1
        right += select(p.labels, fitted).index in (true_choice.tied or [true_choice.index])
    return right / total


def test_fit_recovers_a_hidden_target_from_clean_choices(helpsteer2_dir: Path):
    train = load_probes(helpsteer2_dir / "train.json")
    evals = load_probes(helpsteer2_dir / "eval.json")
    hidden = AlignmentTarget(name="h", values={"helpfulness": 1.0, "verbosity": 0.0})
    fit = fit_profile(R.require(HS2), _records(train, hidden, list(range(0, 400, 20))))
    assert fit.n_choices == 20 and fit.n_explained >= 18
    weights = {a.attribute: a.weight for a in fit.attributes}
    assert weights["helpfulness"] > 0.5 and weights["verbosity"] > 0.5
    assert fit.target["helpfulness"] > 0.6 and fit.target["verbosity"] < 0.4
    assert _agreement(fit.as_target(), hidden, evals) > 0.9


def test_fit_is_probabilistic_about_noisy_choices(helpsteer2_dir: Path):
    train = load_probes(helpsteer2_dir / "train.json")
    evals = load_probes(helpsteer2_dir / "eval.json")
    hidden = AlignmentTarget(name="h", values={"correctness": 1.0})
    records = _records(train, hidden, list(range(1, 400, 13)), flip=0.15, seed=3)
    fit = fit_profile(R.require(HS2), records)
    assert fit.n_explained < fit.n_choices  # no profile explains flipped picks, and none is demanded
    assert _agreement(fit.as_target(), hidden, evals) > 0.85


def test_next_question_is_informative_new_and_fast_enough(helpsteer2_dir: Path):
    train = load_probes(helpsteer2_dir / "train.json")
    pool = [
        ChoiceRecord(id=f"p{i}", question=p.question, responses=p.responses, predictions=p.labels)
        for i, p in enumerate(train[:300])
    ]
    same = [ChoiceRecord(id="same", question="q", responses=["a", "b"], predictions=[dict.fromkeys(HS2, 0.5)] * 2)]
    first = next_question(R.require(HS2), [], same + pool)
    assert first.id != "same" and first.information_bits > 0.3  # two identical responses tell nothing
    assert 0.5 < first.expected_agreement < 1
    answered = _records(train, AlignmentTarget(name="h", values={"coherence": 1.0}), [int(first.id[1:])])
    answered[0] = answered[0].model_copy(update={"id": first.id})
    second = next_question(R.require(HS2), answered, pool)
    assert second.id != first.id
    with pytest.raises(InputError, match="every pool item has been answered"):
        next_question(R.require(HS2), [r.model_copy(update={"chosen": 0}) for r in pool[:2]], pool[:2])


def test_next_question_maximises_expected_agreement_computed_the_long_way(helpsteer2_dir: Path):
    """Every candidate's expected agreement, from posteriors recomputed per answer and each
    profile's own closest responses under the selection rule, against the one product of
    next_question: the question asked is the one the long way rates highest."""
    import numpy as np

    from pluralign.choice.selection import closest
    from pluralign.evaluation.metrics import label_distances
    from pluralign.people.profile import choice_log_probs, posterior, response_matrix, sq_distances

    names = ["helpfulness", "verbosity"]
    attrs = R.require(names)
    train = load_probes(helpsteer2_dir / "train.json")
    pool = [
        ChoiceRecord(id=f"p{i}", question=p.question, responses=p.responses, predictions=p.labels)
        for i, p in enumerate(train[:14])
    ]
    answered = [pool[0].model_copy(update={"chosen": 1})]
    candidates = pool[1:]
    grid = Grid.build(attrs)
    profiles = [
        AlignmentTarget(name="g", values={a: float(v) for a, on, v in zip(names, row_p, row_v, strict=True) if on})
        for row_p, row_v in zip(grid.present, grid.values, strict=True)
    ]
    sets = [
        [set(closest(label_distances(c.predictions or [], t, "euclidean", 0))) for c in candidates] for t in profiles
    ]
    before = posterior(grid, answered)
    expected = []
    for n, c in enumerate(candidates):
        likely = np.exp(
            choice_log_probs(sq_distances(grid.present, grid.values, response_matrix(c, names)), 300.0, 0.05)
        )
        total = 0.0
        for answer in range(len(c.responses)):
            chance = float(before @ likely[:, answer])
            after = posterior(grid, [*answered, c.model_copy(update={"chosen": answer})])
            others = [j for j in range(len(candidates)) if j != n]
            mass = [[sum(after[k] for k in range(len(profiles)) if r in sets[k][j]) for r in (0, 1)] for j in others]
            agree = [max(m) for m in mass]
            total += chance * float(np.mean(agree))
        expected.append(total)
    asked = next_question(attrs, answered, pool)
    assert asked.id != "p0"
    assert asked.expected_agreement == pytest.approx(expected[asked.index - 1], abs=1e-5)
    assert expected[asked.index - 1] >= max(expected) - 1e-5
    assert max(expected) - min(expected) > 0.01  # the candidates differ: the choice is not a coin


def test_grid_covers_every_level_the_middle_included_and_absence():
    import numpy as np

    from pluralign.people.profile import MIDDLE_PRIOR

    grid = Grid.build(R.require(["care", "verbosity"]))
    assert grid.present.shape == (8 * 6 - 1, 2)  # 7 MIC levels or absent; 5 HelpSteer2 levels or absent
    assert sorted(set(grid.values[grid.present[:, 0] == 1, 0].round(2))) == R["care"].level_values()
    prior = np.exp(grid.log_prior)
    n = grid.present.sum(axis=1)
    assert np.allclose([prior[n == k].sum() for k in (1, 2)], 0.5)  # uniform over the number of attributes
    only_verbosity = (grid.present[:, 0] == 0) & (grid.present[:, 1] == 1)
    levels, masses = grid.values[only_verbosity, 1], prior[only_verbosity]
    at = {round(float(v), 2): float(p) for v, p in zip(levels, masses, strict=True)}
    assert at[0.5] == pytest.approx(MIDDLE_PRIOR * at[0.25]) and at[0.25] == pytest.approx(at[1.0])


def test_fit_recovers_a_person_who_wants_the_middle(helpsteer2_dir: Path):
    """Medium complexity: the old grid (no 0.5) could not express it."""
    train = load_probes(helpsteer2_dir / "train.json")
    evals = load_probes(helpsteer2_dir / "eval.json")
    hidden = AlignmentTarget(name="h", values={"complexity": 0.5})
    fit = fit_profile(R.require(HS2), _records(train, hidden, list(range(0, 500, 10))))
    assert abs(fit.target["complexity"] - 0.5) < 0.15
    assert _agreement(fit.as_target(), hidden, evals) > 0.9


def test_no_preference_is_evidence_of_a_near_tie(tmp_path: Path):
    """A person who shrugs between a caring and an uncaring answer does not care much either
    way: the fit moves care towards the middle or out, where a missing line would change nothing."""
    predictions = [{"care": 0.0, "verbosity": 0.2}, {"care": 1.0, "verbosity": 0.8}]
    pair = {"question": "q", "responses": ["x", "y"], "predictions": predictions}
    leaning = [ChoiceRecord(id=f"a{k}", **pair, chosen=1) for k in range(2)]
    shrugs = [ChoiceRecord(id=f"n{k}", **pair, chosen=None) for k in range(6)]
    assert all(r.no_preference for r in shrugs) and not any(r.no_preference for r in leaning)
    attrs = R.require(["care", "verbosity"])
    before = fit_profile(attrs, leaning)
    after = fit_profile(attrs, leaning + shrugs)
    assert after.n_choices == 8 and before.n_explained == 2
    assert before.target["care"] > 0.7  # two picks of the caring answer
    assert abs(after.target.get("care", 0.5) - 0.5) < 0.1  # many shrugs: the two are about equally close
    path = _write(tmp_path / "c.jsonl", [{"id": "x", **pair, "chosen": None}, {"id": "y", **pair, "chosen": 1}])
    read = read_choices(path)
    assert read[0].no_preference and read[1].chosen == 1


def test_shipped_pool_reads_and_has_every_attribute():
    pool = builtin_pool()
    assert len(pool) >= 30 and len({r.id for r in pool}) == len(pool)
    assert all(set(p) == set(HS2) for r in pool for p in r.predictions)


# ---- the CLI -----------------------------------------------------------------------------------


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_profile_fit_cli_writes_a_target_that_choose_accepts(helpsteer2_dir: Path, tmp_path: Path, cli):
    train = load_probes(helpsteer2_dir / "train.json")
    hidden = AlignmentTarget(name="h", values={"helpfulness": 1.0})
    rows = [r.model_dump(exclude_none=True) for r in _records(train, hidden, list(range(0, 300, 25)))]
    choices = _write(tmp_path / "choices.jsonl", rows)
    out = tmp_path / "me.json"
    res = cli("profile", "fit", "--choices", str(choices), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert (
        "the profile explains" in res.stdout and "helpfulness" in res.stdout and "cares with probability" in res.stdout
    )
    target = load_target_file(out)
    assert target.weights is not None and "helpfulness" in target.values
    res = cli(
        "choose", "--target", str(out), "--method", "oracle", "--question", "q", "--response", "a", "--response", "b"
    )
    assert res.returncode == 2 and "oracle needs labelled probes" in res.stderr  # accepted as a target
    plain = tmp_path / "plain.json"
    res = cli(
        "profile",
        "fit",
        "--choices",
        str(choices),
        "--out",
        str(plain),
        "--plain",
        "--attributes",
        "helpfulness,verbosity",
    )
    assert res.returncode == 0, res.stderr
    assert set(json.loads(plain.read_text())) <= {"helpfulness", "verbosity"}


def test_profile_next_cli_skips_answered_ids(helpsteer2_dir: Path, tmp_path: Path, cli):
    train = load_probes(helpsteer2_dir / "train.json")
    pool_rows = [
        {"id": f"p{i}", "question": p.question, "responses": p.responses, "predictions": p.labels}
        for i, p in enumerate(train[:40])
    ]
    pool = _write(tmp_path / "pool.jsonl", pool_rows)
    empty = _write(tmp_path / "none.jsonl", [])
    res = cli("profile", "next", "--choices", str(empty), "--pool", str(pool))
    assert res.returncode == 0, res.stderr
    first = json.loads(res.stdout)
    assert pool_rows[first["index"]]["id"] == first["id"] and 0 < first["expected_agreement"] <= 1
    answered = _write(tmp_path / "answered.jsonl", [{**pool_rows[first["index"]], "chosen": 0}])
    res = cli("profile", "next", "--choices", str(answered), "--pool", str(pool))
    assert res.returncode == 0 and json.loads(res.stdout)["id"] != first["id"]


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([], (), "holds no choices"),
        (
            [
                {
                    "id": "a",
                    "question": "q",
                    "responses": ["x", "y"],
                    "chosen": 2,
                    "predictions": [{"care": 1}, {"care": 0}],
                }
            ],
            (),
            "line 1: chosen 2 is out of range 0..1",
        ),
        ([{"id": "a", "question": "q", "responses": ["x"], "chosen": 0}], (), "need at least 2 responses"),
        (
            [
                {
                    "id": "a",
                    "question": "q",
                    "responses": ["x", "y"],
                    "chosen": 0,
                    "predictions": [{"care": 1, "loyalty": 0.5}, {"care": 0}],
                }
            ],
            ("--attributes", "care,loyalty"),
            "predictions lack loyalty",
        ),
        (
            [
                {
                    "id": "a",
                    "question": "q",
                    "responses": ["x", "y"],
                    "chosen": 0,
                    "predictions": [{"care": 1}, {"care": 0}],
                }
            ],
            ("--attributes", "kindness"),
            "unknown attribute 'kindness'",
        ),
        ([{"id": "a", "question": "q", "responses": ["x", "y"]}], (), "line 1: no 'chosen' (an index, or null"),
    ],
)
def test_profile_fit_bad_input_is_one_line(tmp_path: Path, cli, rows, extra, message):
    choices = _write(tmp_path / "c.jsonl", rows)
    res = cli(
        "profile", "fit", "--choices", str(choices), "--out", str(tmp_path / "t.json"), "--method", "random", *extra
    )
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "t.json").exists()


def test_read_choices_names_the_line(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "question": "q", "responses": ["x", "y"], "chosen": 0}\n{oops\n')
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        read_choices(path)


# ---- explanation and confidence -----------------------------------------------------------------


def test_shares_add_up_and_are_computed_by_hand():
    target = AlignmentTarget(name="t", values={"care": 1.0, "authority": 0.17})
    chosen, other = {"care": 0.92, "authority": 0.5}, {"care": 0.10, "authority": 0.2}
    shares = {s.attribute: s for s in attribute_shares(chosen, other, target, "euclidean")}
    care = (0.10 - 1.0) ** 2 - (0.92 - 1.0) ** 2  # 0.8036
    auth = (0.2 - 0.17) ** 2 - (0.5 - 0.17) ** 2  # -0.108
    assert shares["care"].share == pytest.approx(care / (care + auth))
    assert shares["authority"].share == pytest.approx(auth / (care + auth)) and shares["authority"].share < 0
    preds = [chosen, other]
    choice = select(preds, target)
    ex = lead(preds, choice, target)
    assert ex.runner_up == 1
    assert ex.sentence == "Chosen over response 1 mostly for care: 0.92 against 0.10, target 1.00."


def test_confidence_from_resampled_samples_and_from_token_probabilities():
    target = AlignmentTarget(name="t", values={"care": 1.0})
    steady = {"care": [[0.9, 0.1], [0.8, 0.2], [0.9, 0.1]]}
    conf, note = confidence(steady, None, target, chosen=0)
    assert conf == 1.0 and "3 samples resampled" in note
    split = {"care": [[0.9, 0.1], [0.1, 0.9], [0.5, 0.6], [0.6, 0.5]]}
    conf, _ = confidence(split, None, target, chosen=0)
    assert 0.2 < conf < 0.8
    assert confidence({"care": [[0.9, 0.1]]}, None, target, 0)[0] is None
    probs = {"care": [{"1": 0.5, "0.75": 0.5}, {"1": 0.5, "0": 0.5}]}
    conf, note = confidence(None, probs, target, chosen=0)
    # response 0 is chosen unless it draws 0.75 while response 1 draws 1: P = 1 - 0.25
    assert conf == pytest.approx(0.75, abs=0.07) and "token probabilities" in note
    preds = [{"care": 0.6}, {"care": 0.59}]
    ex = explain_choice(preds, select(preds, target), target, draws={"care": [[0.6, 0.59], [0.6, 0.59]]})
    assert ex.near_tie and "near tie" in ex.sentence


def test_choose_cli_reports_explanation_and_confidence(cli, smollm2_path: Path, tmp_path: Path):
    args = [
        "choose",
        "--target",
        '{"care": 1.0, "fairness": 0.9}',
        "--question",
        "Should I help my neighbour?",
        "--response",
        "Yes, help her with her shopping.",
        "--response",
        "No, ignore her.",
        "--method",
        "spm-zeroshot",
        "--model",
        str(smollm2_path),
        "--samples",
        "3",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--n-ctx",
        "2048",
    ]
    res = cli(*args, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["explanation"]["chosen"] == data["selected_index"]
    assert 0.0 <= data["confidence"] <= 1.0 and isinstance(data["near_tie"], bool)
    text = cli(*args)
    assert text.returncode == 0 and "Over the runner-up:" in text.stdout and "Confidence:" in text.stdout
