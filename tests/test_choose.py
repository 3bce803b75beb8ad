"""`pluralign choose` and `pluralign.choose` with the real SmolLM2."""

import json

import pytest

import pluralign
from pluralign.support.errors import InputError

pytestmark = pytest.mark.slow  # real models

Q = "Should I tell my friend the truth about their bad haircut?"
RESPONSES = [
    "Be honest but kind: say it's not your favourite and suggest a style you think suits them.",
    "Lie and say it looks great.",
]
FAST = ["--model", "smollm2-135m", "--samples", "1", "--similarity", "bm25", "--no-cache", "--n-ctx", "4096"]


def test_choose_cli_json(cli, tmp_path):
    res = cli(
        "choose",
        "--target",
        '{"care": 1.0, "fairness": 0.83}',
        "--question",
        Q,
        "--response",
        RESPONSES[0],
        "--response",
        RESPONSES[1],
        "--json",
        *FAST,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["selected_index"] in (0, 1) and out["reasoning"]
    assert len(out["predictions"]) == 2 and set(out["predictions"][0]) == {"care", "fairness"}
    assert set(out["samples"]) == {"care", "fairness"}
    # the choice is the response closest to the target
    target = {"care": 1.0, "fairness": 0.83}
    dist = [sum((p[a] - v) ** 2 for a, v in target.items()) for p in out["predictions"]]
    assert out["selected_index"] == dist.index(min(dist))


def test_choose_cli_table_from_input_file(cli, tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"question": Q, "responses": RESPONSES}))
    (tmp_path / "t.json").write_text(json.dumps({"care": 1.0}))
    res = cli("choose", "--target", str(tmp_path / "t.json"), "--input", str(tmp_path / "in.json"), *FAST)
    assert res.returncode == 0, res.stderr
    assert "Chosen:" in res.stdout and "predicted attribute values" in res.stdout and "target" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", '{"kindness": 1}', "--question", "q", "--response", "a", "--response", "b"], "unknown attribute"),
        (["--target", '{"care": 1.5}', "--question", "q", "--response", "a", "--response", "b"], "outside [0, 1]"),
        (["--target", '{"care": 1}', "--question", "q", "--response", "only one"], "at least 2 responses"),
        (["--target", '{"care": 1', "--question", "q", "--response", "a", "--response", "b"], "not valid JSON"),
        (
            [
                "--target",
                '{"care": 1}',
                "--question",
                "q",
                "--response",
                "a",
                "--response",
                "b",
                "--model",
                "/nope/model.gguf",
            ],
            "does not exist",
        ),
        (
            [
                "--target",
                '{"care": 1}',
                "--question",
                "q",
                "--response",
                "a",
                "--response",
                "b",
                "--backend",
                "openai",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--model",
                "m",
            ],
            "unreachable",
        ),
    ],
)
def test_choose_bad_input_one_line(cli, args, message):
    extra = [] if "--model" in args else ["--model", "smollm2-135m"]
    res = cli("choose", *args, *extra, "--no-cache", "--samples", "1")
    assert res.returncode == 2, res.stdout
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_python_api_zeroshot():
    result = pluralign.choose(
        Q, RESPONSES, {"care": 1.0}, method="spm-zeroshot", model="smollm2-135m", samples=2, cache=False, n_ctx=4096
    )
    assert result.selected_index in (0, 1) and result.selected_response == RESPONSES[result.selected_index]
    assert len(result.samples["care"]) == 2
    with pytest.raises(InputError, match="at least 2"):
        pluralign.choose(Q, RESPONSES[:1], {"care": 1.0}, method="random")


def test_choose_for_a_group(cli, tmp_path):
    """A group's shares are the members' own choices from the same predictions, weighted."""
    members = [
        {"name": "carer", "values": {"care": 1.0}, "weight": 3},
        {"name": "fair", "values": {"fairness": 1.0, "care": 0.0}, "weight": 1},
    ]
    (tmp_path / "team.jsonl").write_text("".join(json.dumps(m) + "\n" for m in members))
    args = ["choose", "--question", Q, "--response", RESPONSES[0], "--response", RESPONSES[1], *FAST]
    res = cli(*args, "--target", str(tmp_path / "team.jsonl"), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["group"] == "team" and out["members"] == 2 and sum(out["shares"]) == pytest.approx(1.0)
    shares = [0.0, 0.0]
    for m in members:
        dist = [sum((p[a] - v) ** 2 for a, v in m["values"].items()) ** 0.5 for p in out["predictions"]]
        best = [i for i, d in enumerate(dist) if d == min(dist)]
        for i in best:
            shares[i] += m["weight"] / 4 / len(best)
    assert out["shares"] == pytest.approx(shares)
    assert out["selected_index"] == max(range(2), key=lambda i: (shares[i], -i))
    assert "of the group" in out["explanation"]["sentence"] and set(out["predictions"][0]) == {"care", "fairness"}
    table = cli(*args, "--target", str(tmp_path / "team.jsonl"))
    assert table.returncode == 0 and "share of the group" in table.stdout and "The group:" in table.stdout
    bad = cli(*args, "--target", '[{"values": {"care": 1}, "weight": -2}]')
    assert bad.returncode == 2 and "weight must be a positive number" in bad.stderr and "Traceback" not in bad.stderr
    plain = ["choose", "--question", Q, "--response", RESPONSES[0], "--response", RESPONSES[1]]
    direct = cli(*plain, "--target", str(tmp_path / "team.jsonl"), "--method", "random")
    assert direct.returncode == 2 and "predicts no attribute values" in direct.stderr
