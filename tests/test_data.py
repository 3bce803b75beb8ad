"""Benchmark builders: MIC from CSVs written here, HelpSteer2 pairing, the stratified split."""

import csv
import json
from pathlib import Path

import pytest

from pluralign.choice.attributes import HELPSTEER2, MIC
from pluralign.choice.probes import Probe, load_probes
from pluralign.evaluation.data.benchmark import load_benchmark
from pluralign.evaluation.data.helpsteer2 import PairingReport, pair_rows
from pluralign.evaluation.data.mic import build_mic, read_mic_csv
from pluralign.evaluation.data.split import stratified_split
from pluralign.support.errors import InputError

COLUMNS = [
    "",
    "WorkerId",
    "WorkTimeInMinutes",
    "chatbot",
    "Q",
    "A",
    "rot",
    "moral",
    "moral-vector",
    "A_agrees",
    "rot-agree",
    "violation-severity",
    "comments",
    "violation-severity-collapsed",
    "rot-agree-collapsed",
    "QA",
    "split",
]


def write_mic(path: Path, rows: list[tuple[str, str, str, str, object]]) -> Path:
    """rows: (Q, A, rot, moral-vector, A_agrees)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, (q, a, rot, vec, agrees) in enumerate(rows):
            w.writerow([i, f"W{i}", 1.5, "bot", q, a, rot, "care", vec, agrees, 4, 2, "", 1, 1, q + a, "train"])
    return path


CARE = "[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]"
CARE_FAIR = "[1, 1, 0, 0, 0, 0]"
AUTH = "[0.0, 0.0, 0.0, 0.0, 1.0, 0.0]"


def test_mic_labels_match_hand_computation(tmp_path: Path):
    rows = [
        # Q2 first in the file: the reference groups with pandas, which sorts questions.
        ("Q2 why?", "because", "Be kind.", CARE, "2"),
        ("Q2 why?", "no reason", "Obey.", AUTH, 0),
        ("Q1 how?", "like this", "Help others.", CARE, 2.0),  # agree care
        ("Q1 how?", "like this", "Be fair.", CARE_FAIR, "0"),  # disagree care+fairness
        ("Q1 how?", "like this", "Be kind.", CARE, "2.0"),  # agree care
        ("Q1 how?", "like this", "Ignored 4th row.", CARE, "0"),  # only first 3 rows count
        ("Q1 how?", "like that", "Obey.", AUTH, "1"),  # neutral
        ("Q3 single?", "only one", "Be kind.", CARE, "2"),  # single answer: dropped
        ("Q3 single?", "only one", "Be kind.", CARE, "2"),
        ("Q4 nan?", "a", "Be kind.", CARE, "2"),  # missing agreement: dropped
        ("Q4 nan?", "b", "Be kind.", CARE, ""),
    ]
    path = write_mic(tmp_path / "MIC.csv", rows)
    stats = build_mic(path, tmp_path / "out", split=False)
    assert (stats.kept_questions, stats.dropped_single_answer, stats.dropped_missing_agreement) == (2, 1, 1)
    probes = load_probes(tmp_path / "out" / "all.json")
    assert [p.question for p in probes] == ["Q1 how?", "Q2 why?"]
    q1 = probes[0]
    assert q1.responses == ["like this", "like that"]
    # care: +1 -1 +1 = 1 -> (1+3)/6 = 0.67; fairness: -1 -> 0.33; others 0 -> 0.5
    assert q1.labels[0] == {
        "care": 0.67,
        "fairness": 0.33,
        "liberty": 0.5,
        "loyalty": 0.5,
        "authority": 0.5,
        "sanctity": 0.5,
    }
    assert q1.labels[1] == dict.fromkeys(MIC, 0.5)
    assert q1.reasonings[0]["care"].startswith("The response agrees with the care rule of thumb: Help others.")
    assert "disagrees with the fairness rule of thumb: Be fair." in q1.reasonings[0]["fairness"]
    assert "Ignored 4th row" not in json.dumps(q1.reasonings)
    assert q1.reasonings[1]["authority"] == "The response is neutral with respect to authority."
    q2 = probes[1]
    assert q2.labels[0]["care"] == 0.67 and q2.labels[1]["authority"] == 0.33


@pytest.mark.parametrize(
    ("vector", "agrees", "message"),
    [
        ("__import__('os').system('true')", "2", "line 2: moral-vector"),
        ("[1, 0, 0]", "2", "line 2: moral-vector must list 6 numbers"),
        (CARE, "yes", "line 2: A_agrees 'yes' is not 0, 1 or 2"),
        (CARE, "3", "line 2: A_agrees '3'"),
    ],
)
def test_mic_malformed_rows_name_the_line(tmp_path: Path, vector: str, agrees: str, message: str):
    path = write_mic(tmp_path / "MIC.csv", [("Q", "A", "r", vector, agrees), ("Q", "B", "r", CARE, "1")])
    with pytest.raises(InputError, match=message):
        read_mic_csv(path)


def test_mic_missing_column_and_not_csv(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text("Q,A\nx,y\n")
    with pytest.raises(InputError, match="missing column"):
        read_mic_csv(path)


def test_mic_cli_errors_cleanly(tmp_path: Path, cli):
    path = write_mic(tmp_path / "MIC.csv", [("Q", "A", "r", "[1, 0", "2")])
    res = cli("data", "mic", str(path), "--out", str(tmp_path / "o"))
    assert res.returncode == 2
    assert "line 2" in res.stderr and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_mic_split_on_a_larger_synthetic_csv(tmp_path: Path, cli):
    patterns = {3: "222", 2: "221", 1: "211", 0: "111", -1: "011", -2: "001", -3: "000"}
    rows = []
    for q in range(126):
        moral, total = q % 6, (q // 6) % 7 - 3
        vec = [0] * 6
        vec[moral] = 1
        for r, agrees in enumerate(patterns[total]):
            rows.append((f"question {q}", f"answer {q}-0", f"rot {r}", str(vec), agrees))
        rows.append((f"question {q}", f"answer {q}-1", "rot", str(vec), "1"))
    path = write_mic(tmp_path / "MIC.csv", rows)
    res = cli("data", "mic", str(path), "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    bench = load_benchmark(tmp_path / "o")
    assert bench.train is not None and bench.eval
    train_q = {p.question for p in bench.train}
    assert not train_q & {p.question for p in bench.eval}


def _probe(labels: list[dict[str, float]], prompt: str) -> Probe:
    return Probe(question=prompt, responses=[f"{prompt} a", f"{prompt} b"], labels=labels)


def test_helpsteer2_pairing_and_normalisation():
    rows = []
    for i in range(4):
        for j in range(2):
            rows.append({"prompt": f"p{i}", "response": f"r{i}{j}", **{a: (i + j) % 5 for a in HELPSTEER2}})
    rows.insert(4, {"prompt": "orphan", "response": "x", **dict.fromkeys(HELPSTEER2, 0)})
    report = PairingReport()
    probes = pair_rows(rows, report)
    # rows: p0 p0 p1 p1 orphan p2 p2 p3 p3. The paper's loop pairs (0,1) (2,3) (4,5) (6,7): the
    # last two join different prompts and p3's pair is never reached. Grouping by prompt keeps
    # the paper's two good pairs, re-pairs p2 within itself, drops the orphan and p3's pair.
    assert [p.question for p in probes] == ["p0", "p1", "p2"]
    assert probes[1].labels[1]["helpfulness"] == 0.5 and probes[1].responses == ["r10", "r11"]
    assert probes[2].responses == ["r20", "r21"]
    assert (report.paper_pairs_kept, report.recovered_pairs) == (2, 1)
    assert (report.dropped_single_rows, report.dropped_last_pair, report.dropped_extra_rows) == (1, 1, 0)
    assert "1 prompts with one response" in report.summary()


def test_helpsteer2_prompt_with_three_responses_keeps_the_papers_pairs():
    def row(prompt: str, n: int) -> dict:
        return {"prompt": prompt, "response": f"{prompt}-{n}", **dict.fromkeys(HELPSTEER2, 2)}

    rows = [
        row("a", 0),
        row("a", 1),
        row("a", 2),
        row("b", 0),
        row("b", 1),
        row("c", 0),
        row("c", 1),
        row("z", 0),
        row("z", 1),
    ]
    report = PairingReport()
    probes = pair_rows(rows, report)
    # paper: (0,1)=a ok, (2,3)=a+b wrong, (4,5)=b+c wrong, (6,7)=c+z wrong; grouping recovers b and c
    assert [p.responses for p in probes] == [["a-0", "a-1"], ["b-0", "b-1"], ["c-0", "c-1"]]
    assert report.dropped_extra_rows == 1 and report.dropped_last_pair == 1
    assert report.pairs == 3 and report.rows == 9


def test_stratified_split_properties():
    probes = []
    for i in range(60):
        v = [(i % 5) / 4, ((i + 1) % 5) / 4]
        probes.append(_probe([{"x": v[0], "y": v[1]}, {"x": v[1], "y": v[0]}], f"q{i}"))
    train, evals = stratified_split(probes, ["x", "y"], levels=5, cap=3)
    assert len(evals) == 30 and 0 < len(train) <= 30  # 10 cells x 3, train takes what is left
    assert not {p.question for p in train} & {p.question for p in evals}
    for level in (0.0, 0.25, 0.5, 0.75, 1.0):
        assert sum(any(lab["x"] == level for lab in p.labels) for p in evals) >= 3


def test_benchmark_item_errors(tmp_path: Path, cli):
    bad = tmp_path / "b1"
    bad.mkdir()
    (bad / "eval.json").write_text(json.dumps([{"prompt": "q", "responses": ["only one"]}]))
    res = cli("eval", "--benchmark", str(bad), "--method", "random", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "item 0" in res.stderr and "at least 2 responses" in res.stderr
    assert "Traceback" not in res.stderr
    (bad / "eval.json").write_text(json.dumps([{"prompt": "q", "responses": ["a", "b"], "labels": [{"care": 1.0}]}]))
    res = cli("eval", "--benchmark", str(bad), "--method", "random", "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "1 label sets for 2 responses" in res.stderr
