"""Hostile input at every entry point: every class of the sweeps' findings, with variants beyond the
examples the sweep named. Nothing here needs a model: the judge, where one is needed, is a
scripted OpenAI-compatible server on 127.0.0.1 forced to misbehave."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from support import one_line_error, openai_choose, run_cli, start_server, stop

VALID = json.dumps({"A": {"reasoning": "Fine.", "score": 70}, "B": {"reasoning": "Weak.", "score": 20}})


# ---- 1. never delete or overwrite what is not ours ------------------------------------------


def _targets(folder: Path, named: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file, name in named.items():
        (folder / f"{file}.json").write_text(json.dumps({"name": name, "values": {"helpfulness": 1.0}}))
    return folder


def _oracle(cli, bench: Path, out: Path, *targets: str):
    args = ["eval", "--benchmark", str(bench), "--method", "oracle", "--limit", "5", "--out", str(out)]
    for t in targets:
        args += ["--target", t]
    return cli(*args)


@pytest.mark.parametrize(
    "name", ["../../victim/results", "a/b", "..", "/etc/passwd", "x" * 150, "quo\"te'<b>", "C:\\win", "tab\tname"][:7]
)
def test_a_target_name_is_a_label_never_a_path(helpsteer2_dir: Path, tmp_path: Path, cli, name: str):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "results.json").write_text("precious")
    out = tmp_path / "runs" / "x"
    res = _oracle(cli, helpsteer2_dir, out, str(_targets(tmp_path / "t", {"t": name})))
    assert res.returncode == 0, res.stderr
    assert (victim / "results.json").read_text() == "precious"
    written = [p for p in (tmp_path).rglob("*") if p.is_file() and "input_output" in p.parts]
    assert written and all(p.parent == out / "input_output" for p in written), written
    results = json.loads((out / "results.json").read_text())
    assert [t["name"] for t in results["targets"]] == [name]
    # the run is scored again by its label
    again = cli("metrics", str(out), "--json")
    assert again.returncode == 0 and json.loads(again.stdout)[0]["name"] == name


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "must not be empty"), ("a\x00b", "control character"), ("ok\n", "control character"), ("y" * 300, "long")],
)
def test_a_target_name_that_cannot_be_a_label_is_one_line(helpsteer2_dir, tmp_path: Path, cli, name, message):
    res = _oracle(cli, helpsteer2_dir, tmp_path / "out", str(_targets(tmp_path / "t", {"t": name})))
    one_line_error(res, message)
    assert not (tmp_path / "out" / "input_output").exists()


LONG = "y" * 40_000
CHOICE = ["choose", "--method", "random", "--question", "q?", "--response", "a", "--response", "b"]


@pytest.mark.parametrize("door", ["target", "target file", "calibration", "input"])
def test_a_long_name_from_the_input_is_cut_in_the_middle_of_the_error(tmp_path: Path, cli, door: str):
    """An error names what it refuses; a 40,000-character name is shown cut (the message's start
    and its end stay), never whole, and never takes seconds to redact."""
    from pluralign.support.errors import LINE_LIMIT

    if door == "target":
        args, ends = [*CHOICE, "--target", json.dumps({LONG: 1})], "sanctity, verbosity)"
    elif door == "target file":
        (tmp_path / "t.json").write_text(json.dumps({"values": {"care": 1, LONG: 0}}))
        args, ends = [*CHOICE, "--target", str(tmp_path / "t.json")], "sanctity, verbosity)"
    elif door == "calibration":
        maps = {"care": {"x": [0, 1], "y": [0, 1], "pairs": 10}}
        calibration = {"format": "pluralign-calibration", "judge": {"method": LONG}, "attributes": maps}
        (tmp_path / "c.json").write_text(json.dumps(calibration))
        args = [*CHOICE, "--target", '{"care": 1}', "--calibration", str(tmp_path / "c.json")]
        ends = "(not 'random')"
    else:
        (tmp_path / "in.json").write_text(json.dumps({"question": "q?", "responses": ["a", "b"], LONG: 1}))
        args = ["choose", "--method", "random", "--input", str(tmp_path / "in.json"), "--target", '{"care": 1}']
        ends = ""
    res = cli(*args)
    one_line_error(res, "characters ...]")
    line = res.stderr.strip()
    assert len(line) <= len("error: ") + LINE_LIMIT and line.endswith(ends), line[-200:]


def test_a_message_is_redacted_before_it_is_cut():
    """A registered secret across the place where a long message is cut is masked whole first: cut
    first, its halves would pass the registry."""
    from pluralign.support.errors import one_line
    from pluralign.support.redact import register_secret

    secret = "Zq7-registered-secret-value"
    register_secret(secret)
    for at in range(600, 680, 7):
        shown = one_line("a" * at + secret + "b" * 3000)
        assert all(secret[i : i + 5] not in shown for i in range(len(secret) - 4)), (at, shown)


def test_two_labels_never_share_a_file():
    from pluralign.support.names import file_stem

    labels = ["a/b", "a_b", "a?b", "a b", "../a/b", "target_high", "é"]
    stems = [file_stem(x) for x in labels]
    assert len(set(stems)) == len(stems)
    assert file_stem("target_high") == "target_high"
    assert all("/" not in s and s not in (".", "..") and not s.startswith(".") for s in stems)


# ---- 3. secrets never appear -----------------------------------------------------------------


def test_a_password_in_the_base_url_never_appears(tmp_path: Path):
    res = openai_choose("http://user:hunter2pass@127.0.0.1:9/v1", "--timeout", "2")
    one_line_error(res, "unreachable")
    assert "hunter2pass" not in res.stderr + res.stdout and "***@127.0.0.1" in res.stderr


def test_an_upstream_that_echoes_the_key_is_redacted(scripted):
    upstream, _ = scripted([("echo", 401)])
    secret = "sk-live-0123456789abcdefSECRET"
    res = openai_choose(upstream, env={"OPENAI_API_KEY": secret})
    one_line_error(res, "refused the API key")
    assert secret not in res.stderr + res.stdout and "0123456789abcdef" not in res.stderr
    upstream, _ = scripted([("echo", 400)])
    res = openai_choose(upstream, env={"OPENAI_API_KEY": "plainkeywithoutprefix42"})
    one_line_error(res, "answered 400")
    assert "plainkeywithoutprefix42" not in res.stderr


def test_redaction_covers_the_shapes_of_a_secret():
    from pluralign.support.errors import one_line
    from pluralign.support.redact import redact, register_secret

    register_secret("my-registered-value-123")
    text = (
        "https://bob:pw1@host/v1 Authorization: Bearer abc.def ghi api_key=zzz123 "
        '{"password": "p@ss"} sk-proj-ABCDEFGH token xyz987 my-registered-value-123'
    )
    out = one_line(text)
    for secret in ("pw1", "abc.def", "zzz123", "p@ss", "ABCDEFGH", "xyz987", "my-registered-value-123"):
        assert secret not in out, (secret, out)
    assert redact("no secret here: http://127.0.0.1:8000/v1") == "no secret here: http://127.0.0.1:8000/v1"


# ---- 4. upstream faults and odd values: one line, never a traceback ----------------------


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (("raw", 307, {"location": "/v1/chat/completions"}, b""), "redirect (307)"),
        (("raw", 404, {"content-type": "text/html"}, b"<h1>nope</h1>"), "404"),
        (("raw", 401, {}, b"no"), "refused the API key (401)"),
        (("raw", 200, {"content-encoding": "gzip", "content-type": "application/json"}, b"not gzip"), "unreachable"),
        (("raw", 200, {"content-type": "application/json"}, b"[" * 100_000 + b"]" * 100_000), "no answer valid"),
        (("raw", 200, {"content-encoding": "gzip"}, gzip.compress(b"[" * 50_000)), "no answer valid"),
        (("raw", 503, {"retry-after": "soon"}, b"busy"), "unreachable"),
        (("raw", 429, {"retry-after": "99999999999999999999"}, b"busy"), "unreachable"),
    ],
    ids=["redirect", "404", "401", "bad-gzip", "deep", "deep-gzip", "retry-after-soon", "retry-after-huge"],
)
def test_upstream_faults_are_one_line(scripted, step, message):
    upstream, _ = scripted([step])
    res = openai_choose(upstream, "--timeout", "5")
    one_line_error(res, message)


@pytest.mark.parametrize("url", ["http://[::1", "ftp://127.0.0.1/v1", "127.0.0.1:8000", "http://", "http://a b/v1"])
def test_a_base_url_that_is_not_one_is_one_line(url: str):
    one_line_error(openai_choose(url), "--base-url")


@pytest.mark.slow  # waits out a dripping answer
def test_the_timeout_bounds_an_answer_that_drips(scripted):
    import time

    upstream, _ = scripted([("drip", 0.2, 60)])
    started = time.monotonic()
    res = openai_choose(upstream, "--timeout", "3")
    assert time.monotonic() - started < 30
    one_line_error(res, "no complete answer within 3 s")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--n-attributes", "1", "--levels", "100"), "combinations"),
        (("--n-attributes", "1", "--levels", "1099511627776"), "--levels must be between 2 and 101"),
        (("--n-attributes", "1", "--levels", "1"), "--levels"),
        (("--n-attributes", "1", "--count", "0"), "--count"),
        (("--n-attributes", "9"), "--n-attributes must be between 1 and 5"),
        ((), "--n-attributes is required"),
        (("--n-attributes", "1", "--names", ""), "--names '' names no attribute"),
        (("--n-attributes", "1", "--names", " , ,"), "names no attribute"),
        (("--n-attributes", "1", "--names", "care,../x"), "unknown attribute '../x'"),
    ],
)
def test_targets_draw_bounds_its_work_first(cli, args, message):
    one_line_error(cli("targets", "draw", *args), message)


def test_the_old_targets_sample_and_its_count_flag_still_work_with_a_warning(cli):
    new = cli("targets", "draw", "--n-attributes", "2", "--count", "3")
    old = cli("targets", "sample", "--attributes", "2", "--count", "3")
    assert new.returncode == old.returncode == 0 and new.stdout == old.stdout and len(new.stdout.splitlines()) == 3
    assert "targets draw" in old.stderr and "warning" not in new.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "70000"), "--port"),
        (("--port", "0"), "--port"),
        (("--n-ctx", "1000000000"), "--n-ctx"),
        (("--decision-timeout", "nan"), "--decision-timeout"),
        (("--decision-timeout", "inf"), "--decision-timeout"),
        (("--body-timeout", "-1"), "--body-timeout"),
        (("--max-body-bytes", "-1"), "--max-body-bytes"),
        (("--max-text-chars", "0"), "--max-text-chars"),
        (("--max-responses", "1"), "--max-responses"),
        (("--runs", "/nonexistent/runs"), "--runs"),
        (("--runs", "/etc/hostname"), "--runs"),
        (("--profiles", "/etc/hostname"), "--profiles"),
        (("--timeout", "nan"), "timeout"),
        (("--method", "spm-zeroshot", "--backend", "openai", "--base-url", "http://[::1"), "--base-url"),
        (("--db-pool", "3"), "--db-pool applies to a postgresql:// --db"),
        (("--db", "users.sqlite", "--db-pool", "3"), "--db-pool applies to a postgresql:// --db"),
        (("--db-pool", "0"), "--db-pool"),
        (("--method", "spm-zeroshot", "--cache-pool", "2"), "--cache-pool applies to a postgresql:// --cache"),
        (("--method", "spm-zeroshot", "--cache", "c.sqlite", "--cache-pool", "2"), "--cache-pool applies"),
        (("--method", "spm-zeroshot", "--cache", "postgresql://u@127.0.0.1/d", "--cache-pool", "0"), "--cache-pool"),
    ],
)
def test_serve_options_that_cannot_work_are_one_line(cli, args, message):
    res = cli("serve", "--method", "random", *args, timeout=60)
    one_line_error(res, message)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"values": {"helpfulness": 1.0, "verbosity": 0.0}, "weights": {"helpfulness": 0, "verbosity": 0}}, "weight"),
        ({"values": {"helpfulness": "0.5"}}, "must be a number"),
        ({"values": {"helpfulness": True}}, "must be a number"),
        ({"values": {"helpfulness": 1.0}, "weights": {"helpfulness": "1"}}, "must be a number"),
        ({"helpfulness": "1"}, "must be a number"),
    ],
)
def test_targets_are_numbers_and_not_all_zero_weights(helpsteer2_dir, tmp_path: Path, cli, target, message):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(target))
    one_line_error(_oracle(cli, helpsteer2_dir, tmp_path / "out", str(path)), message)


# ---- 5. files: corrupt lines, odd text, odd paths --------------------------------------------


def test_huge_numbers_in_run_files_are_skipped_lines_not_tracebacks(helpsteer2_dir: Path, tmp_path: Path, cli):
    out = tmp_path / "run"
    assert _oracle(cli, helpsteer2_dir, out, "high").returncode == 0
    for name in ("assessments.jsonl", "decisions.jsonl"):
        with open(out / name, "a") as handle:
            handle.write('{"item": ' + "9" * 5000 + "}\n")
            handle.write("[" * 100_000 + "\n")
    res = cli("metrics", str(out))
    assert res.returncode == 0 and "Traceback" not in res.stderr and "skipped 2 unreadable" in res.stderr
    res = _oracle(cli, helpsteer2_dir, out, "high")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr


def test_choices_with_unicode_line_separators_inside_strings(tmp_path: Path):
    from pluralign.people.profile import read_choices

    path = tmp_path / "choices.jsonl"
    records = [
        {"id": "1", "question": "a\u2028b", "responses": ["x\u0085y", "z\u2029"], "chosen": 0},
        {"id": "2", "question": "q\x0bq\x0cq\x1cq", "responses": ["1", "2"], "chosen": None},
    ]
    path.write_text("\r\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\r\n", encoding="utf-8")
    read = read_choices(path, need_chosen=False)
    assert [r.question for r in read] == ["a\u2028b", "q\x0bq\x0cq\x1cq"]
    path.write_text('{"id": "1", "question": "q", "responses": ["a", "b"], "chosen": ' + "1" * 5000 + "}\n")
    with pytest.raises(Exception, match="line 1"):
        read_choices(path)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"chosen": "1"}, "chosen"),
        ({"chosen": True}, "chosen"),
        ({"predictions": [{"care": True}, {"care": 0.1}]}, "must be a number"),
        ({"predictions": [{"care": "0.5"}, {"care": 0.1}]}, "must be a number"),
        ({"responses": ["\ud800", "b"]}, "lone surrogate"),
    ],
)
def test_choices_are_not_coerced(tmp_path: Path, record, message):
    from pluralign.people.profile import read_choices
    from pluralign.support.errors import InputError

    path = tmp_path / "choices.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q", "responses": ["a", "b"], "chosen": 0, **record}) + "\n")
    with pytest.raises(InputError, match=message):
        read_choices(path)


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc80\udc80"])
def test_a_lone_surrogate_is_one_line(tmp_path: Path, cli, text):
    path = tmp_path / "probe.json"
    path.write_text(json.dumps({"question": "q", "responses": [text, "b"]}))
    res = cli("choose", "--input", str(path), "--target", '{"care": 1}', "--method", "random")
    one_line_error(res, "lone surrogate")
    path.write_text(json.dumps({"question": text, "responses": ["a", "b"]}))
    one_line_error(cli("choose", "--input", str(path), "--target", '{"care": 1}', "--method", "random"), "surrogate")


def test_benchmark_labels_are_numbers_not_strings(tmp_path: Path, cli):
    bench = tmp_path / "b"
    bench.mkdir()
    item = {"prompt": "q", "responses": ["a", "b"], "labels": [{"helpfulness": "1"}, {"helpfulness": 0.0}]}
    (bench / "eval.json").write_text(json.dumps([item]))
    (bench / "train.json").write_text("[]")
    one_line_error(_oracle(cli, bench, tmp_path / "out", "high"), "must be a number")


def test_paths_under_a_file_or_of_the_wrong_kind_are_one_line(helpsteer2_dir: Path, tmp_path: Path, cli):
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    under = a_file / "sub"
    one_line_error(_oracle(cli, helpsteer2_dir, under, "high"))
    one_line_error(cli("targets", "draw", "--n-attributes", "1", "--out", str(under)), str(a_file))
    one_line_error(openai_choose("http://127.0.0.1:9/v1", "--cache", str(under / "c.sqlite"), cache=True), str(a_file))
    one_line_error(cli("report", str(helpsteer2_dir), "--out", str(under)))
    one_line_error(cli("data", "mic", str(a_file), "--out", str(under)))
    # a .lock that is a folder
    out = tmp_path / "run"
    (out / ".lock").mkdir(parents=True)
    one_line_error(_oracle(cli, helpsteer2_dir, out, "high"), ".lock")
    # profile fit --out a folder
    choices = tmp_path / "choices.jsonl"
    choices.write_text(
        json.dumps(
            {
                "id": "1",
                "question": "q",
                "responses": ["a", "b"],
                "chosen": 0,
                "predictions": [{"helpfulness": 0.9}, {"helpfulness": 0.1}],
            }
        )
        + "\n"
    )
    folder = tmp_path / "folder"
    folder.mkdir()
    one_line_error(cli("profile", "fit", "--choices", str(choices), "--out", str(folder)), str(folder))


MIC_HEADER = (
    ",WorkerId,WorkTimeInMinutes,chatbot,Q,A,rot,moral,moral-vector,A_agrees,rot-agree,violation-severity,"
    "comments,violation-severity-collapsed,rot-agree-collapsed,QA,split"
)


def _mic_row(i: int, q: str, a: str, vector: str = "[1.0, 0.0, 0.0, 0.0, 0.0, 0.0]", agrees: str = "2") -> str:
    return f'{i},w,1,bot,{q},{a},rot {i},care,"{vector}",{agrees},4,1,,1,4,qa,train'


def test_mic_csv_with_a_byte_order_mark_reads(tmp_path: Path):
    from pluralign.evaluation.data.mic import read_mic_csv

    path = tmp_path / "MIC.csv"
    path.write_text("\ufeff" + MIC_HEADER + "\n" + _mic_row(0, "q", "a") + "\n", encoding="utf-8")
    assert [r.question for r in read_mic_csv(path)] == ["q"]


def test_mic_csv_duplicated_column_and_out_of_range_vector_name_the_problem(tmp_path: Path, cli):
    path = tmp_path / "MIC.csv"
    path.write_text(MIC_HEADER + ",Q\n" + _mic_row(0, "q", "a") + ",other\n")
    one_line_error(cli("data", "mic", str(path), "--out", str(tmp_path / "o")), "more than once")
    path.write_text(
        MIC_HEADER + "\n" + _mic_row(0, "q", "a") + "\n" + _mic_row(1, "q", "b", "[2.0, 0, 0, 0, 0, 0]") + "\n"
    )
    one_line_error(cli("data", "mic", str(path), "--out", str(tmp_path / "o")), "line 3")


def test_batch_import_survives_hostile_lines(tmp_path: Path, cli):
    results = tmp_path / "results.jsonl"
    lines = [
        "[" * 100_000,
        '{"custom_id": ' + "7" * 5000 + "}",
        '{"custom_id": ["a", "b"]}',
        '{"custom_id": {"x": 1}}',
        json.dumps({"custom_id": "x" * 5000}),
        "[]",
        "not json",
    ]
    results.write_text("\n".join(lines) + "\n")
    res = cli("batch", "import", str(results), "--cache", str(tmp_path / "c.sqlite"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr  # 2: nothing could be imported
    assert "7 result lines" in res.stdout and "7 unreadable" in res.stdout, res.stdout


@pytest.mark.parametrize(
    ("name", "kind"),
    [("assessments.jsonl", "link"), (".lock", "link"), ("assessments.jsonl", "fifo"), ("calls.jsonl", "dangling")],
)
def test_a_run_never_writes_through_a_link_or_into_a_pipe_planted_in_its_folder(helpsteer2_dir, tmp_path, name, kind):
    """A run folder that came from elsewhere (a clone, an archive) may hold links under the
    names a run appends to; resuming it must refuse, not write where the link points."""
    import os

    out = tmp_path / "run"
    args = ("eval", "--benchmark", str(helpsteer2_dir), "--method", "oracle", "--target", "high", "--out", str(out))
    assert run_cli(*args, "--limit", "2").returncode == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    planted = out / name
    planted.unlink(missing_ok=True)
    if kind == "link":
        planted.symlink_to(outside)
    elif kind == "dangling":
        planted.symlink_to(tmp_path / "created-outside.txt")
    else:
        os.mkfifo(planted)
    res = run_cli(*args, "--limit", "3", timeout=120)
    if kind == "dangling" or res.returncode != 0:
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert name in res.stderr and ("link" in res.stderr or "regular file" in res.stderr), res.stderr
    assert outside.read_text() == "precious\n" and not (tmp_path / "created-outside.txt").exists()


@pytest.mark.parametrize("name", ["decisions.jsonl", "results.json", "assessments.jsonl"])
def test_reading_a_run_never_follows_a_link_out_of_its_folder(helpsteer2_dir, tmp_path, name):
    out = tmp_path / "run"
    args = ("eval", "--benchmark", str(helpsteer2_dir), "--method", "oracle", "--target", "high", "--out", str(out))
    assert run_cli(*args, "--limit", "2").returncode == 0
    outside = tmp_path / f"outside-{name}"
    (out / name).rename(outside)
    (out / name).symlink_to(outside)
    for command in (("metrics", str(out)), ("report", str(out), "--out", str(tmp_path / "report"))):
        res = run_cli(*command)
        if name == "assessments.jsonl" and res.returncode == 0:
            continue  # metrics and report need no assessments: nothing is read through the link
        assert res.returncode == 2 and f"{name} is a link" in res.stderr and "Traceback" not in res.stderr, res.stderr


# ---- 2 and 6. the service: limits, deadlines, hardening --------------------------------------

KEY = "service-key-for-tests-0001"


@pytest.fixture(scope="module")
def hostile_service(tmp_path_factory, helpsteer2_dir):

    root = tmp_path_factory.mktemp("svc")
    runs, profiles = root / "runs", root / "profiles"
    profiles.mkdir()
    good = runs / "good"
    res = run_cli(
        "eval", "--benchmark", str(helpsteer2_dir), "--method", "oracle", "--limit", "3", "--target", "high",
        "--out", str(good),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # a run whose files name a target "../../../secret", and a secret where that would lead
    evil = runs / "evil"
    evil.mkdir()
    results = json.loads((good / "results.json").read_text())
    results["targets"][0]["name"] = "../../../secret"
    results["target_values"] = {"../../../secret": {"helpfulness": 1.0}}
    (evil / "results.json").write_text(json.dumps(results))
    (evil / "decisions.jsonl").write_text((good / "decisions.jsonl").read_text())
    (root / "secret.json").write_text(json.dumps([{"item": 0, "input": "TOPSECRET"}]))
    # runs whose files are past --max-run-file-bytes: listed with the reason, never read
    for name, big in (("huge", "decisions.jsonl"), ("bulky", "results.json"), ("wordy", "input_output/high.json")):
        (runs / name / "input_output").mkdir(parents=True)
        for f in ("results.json", "decisions.jsonl", "input_output/high.json"):
            (runs / name / f).write_bytes((good / f).read_bytes())
        (runs / name / big).write_bytes((good / big).read_bytes() + b" " * 150_000)
    sneaky = runs / "sneaky"  # a run whose decisions are a link to a file outside the folder
    (sneaky / "input_output").mkdir(parents=True)
    (sneaky / "results.json").write_bytes((good / "results.json").read_bytes())
    (root / "elsewhere.jsonl").write_bytes((good / "decisions.jsonl").read_bytes())
    (sneaky / "decisions.jsonl").symlink_to(root / "elsewhere.jsonl")
    twisted = runs / "twisted"  # ... and one whose results are
    twisted.mkdir()
    (root / "elsewhere.json").write_bytes((good / "results.json").read_bytes())
    (twisted / "results.json").symlink_to(root / "elsewhere.json")
    proc, url = start_server(
        "--method", "random", "--runs", str(runs), "--profiles", str(profiles), "--api-key-env", "PLURALIGN_TEST_KEY",
        "--body-timeout", "2", "--max-body-bytes", "200000", "--max-profile-work", "20000000",
        "--max-run-file-bytes", "100000", env={"PLURALIGN_TEST_KEY": KEY},
    )  # fmt: skip
    yield url, root
    stop(proc)


def _get(url: str, path: str, **kw):
    import httpx

    return httpx.get(f"{url}{path}", headers={"X-API-Key": KEY, **kw.pop("headers", {})}, timeout=30, **kw)


def _post(url: str, path: str, body, **kw):
    import httpx

    return httpx.post(f"{url}{path}", json=body, headers={"X-API-Key": KEY, **kw.pop("headers", {})}, timeout=60, **kw)


def test_runs_are_read_by_label_and_never_outside_the_folder(hostile_service):
    url, root = hostile_service
    res = _get(url, "/v1/runs/evil")
    assert res.status_code == 200 and "TOPSECRET" not in res.text, res.text
    listed = {r["name"]: r for r in _get(url, "/v1/runs").json()}
    assert set(listed) == {"good", "evil", "huge", "bulky", "wordy", "sneaky", "twisted"}
    assert "results.json is a link" in listed["twisted"]["error"] and str(root) not in json.dumps(listed)
    assert "error" not in listed["huge"] and "error" not in listed["wordy"]  # their results.json is small
    assert "results.json is" in listed["bulky"]["error"] and "--max-run-file-bytes" in listed["bulky"]["error"]
    for name, big in (("huge", "decisions.jsonl"), ("bulky", "results.json"), ("wordy", "high.json")):
        res = _get(url, f"/v1/runs/{name}")
        assert res.status_code == 500 and f"{big} is" in res.text and "limit of 100000" in res.text, res.text
        assert str(root) not in res.text
    res = _get(url, "/v1/runs/sneaky")
    assert res.status_code == 500 and "decisions.jsonl is a link" in res.text and str(root) not in res.text
    for name in ("%00", "a%00b", "x" * 5000, "..", "%2e%2e", "..%2F..%2Fsecret", "good%0A", "%22onmouseover%3D"):
        res = _get(url, f"/v1/runs/{name}")
        assert res.status_code == 404, (name, res.status_code, res.text)
        assert str(root) not in res.text and len(res.text) < 400


@pytest.mark.parametrize("name", ["ok\n", "ok\r", "a/b", "..", "", "x" * 65, "é", "a b"])
def test_profile_names_are_plain_labels(hostile_service, name):
    url, root = hostile_service
    res = _post(url, "/v1/profiles", {"name": name, "values": {"care": 1.0}})
    assert res.status_code == 422, res.text
    assert [p.name for p in (root / "profiles").iterdir()] == []


def test_the_host_header_is_checked_and_the_bearer_scheme_is_case_insensitive(hostile_service):
    import httpx

    url, _ = hostile_service
    port = url.rsplit(":", 1)[1]
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil"):
        res = _get(url, "/healthz", headers={"Host": host})
        assert res.status_code == 400 and "Host" in res.json()["detail"], host
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
        assert _get(url, "/healthz", headers={"Host": host}).status_code == 200, host
    for scheme in ("bearer", "Bearer", "BEARER"):
        res = httpx.get(f"{url}/healthz", headers={"Authorization": f"{scheme} {KEY}"}, timeout=10)
        assert res.status_code == 200, scheme
    assert httpx.get(f"{url}/healthz", headers={"Authorization": f"Basic {KEY}"}, timeout=10).status_code == 401
    assert httpx.get(f"{url}/healthz", headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401


def test_an_oversized_chunked_body_is_413(hostile_service):
    import httpx

    url, _ = hostile_service

    def chunks():
        for _ in range(50):
            yield b" " * 10_000

    res = httpx.post(
        f"{url}/v1/choose", content=chunks(), headers={"X-API-Key": KEY, "content-type": "application/json"}, timeout=30
    )
    assert res.status_code == 413, res.text


def test_a_body_that_trickles_is_cut_off(hostile_service):
    import socket
    import time

    url, _ = hostile_service
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    socks = []
    for _ in range(5):
        s = socket.create_connection((host, int(port)), timeout=15)
        s.sendall(
            f"POST /v1/choose HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {KEY}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
        )
        socks.append(s)
    answers = []
    for s in socks:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                s.sendall(b" ")
                data += s.recv(4096)
        except OSError:
            pass
        answers.append(data)
        s.close()
    assert time.monotonic() - started < 15
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers


def _profile_records(n: int, names: list[str], seed: int = 0) -> list[dict]:
    import random

    rng = random.Random(seed)
    return [
        {
            "id": str(i),
            "question": "q",
            "responses": ["a", "b"],
            "chosen": rng.randint(0, 1),
            "predictions": [{a: rng.random() for a in names} for _ in range(2)],
        }
        for i in range(n)
    ]


def test_a_heavy_profile_request_is_bounded_and_health_keeps_answering(hostile_service):
    import concurrent.futures
    import time

    url, _ = hostile_service
    eight = ["helpfulness", "correctness", "coherence", "complexity", "verbosity", "care", "fairness", "liberty"]
    started = time.monotonic()
    res = _post(url, "/v1/profile/fit", {"choices": _profile_records(60, eight)})
    assert res.status_code == 422 and "candidate profiles" in res.json()["detail"], res.text
    assert time.monotonic() - started < 5
    # many responses per record and many records: refused by the service's limits
    wide = _profile_records(1, ["care"])[0] | {"responses": ["r"] * 11, "predictions": [{"care": 0.5}] * 11}
    assert _post(url, "/v1/profile/fit", {"choices": [wide]}).status_code == 422
    res = _post(url, "/v1/profile/next", {"choices": [], "pool": _profile_records(1001, ["care"])})
    assert res.status_code == 422 and "limit of 1000" in res.text
    # the largest request the limits allow runs on a worker: /healthz answers within 1 s meanwhile
    six = ["care", "fairness", "liberty", "loyalty", "authority", "sanctity"]
    heavy = {"choices": _profile_records(35, six)}  # 262,143 profiles x 70 responses: just under the work limit
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        pending = pool.submit(_post, url, "/v1/profile/fit", heavy)
        slowest = 0.0
        while not pending.done():
            t0 = time.monotonic()
            assert _get(url, "/healthz").status_code == 200
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
        fitted = pending.result()
    assert fitted.status_code == 200, fitted.text
    assert slowest < 1.0
    over = {"choices": _profile_records(200, six)}  # 262,143 profiles x 400 responses > the work limit
    res = _post(url, "/v1/profile/fit", over)
    assert res.status_code == 422 and "units of work" in res.json()["detail"]


@pytest.mark.slow  # starts `pluralign serve`
def test_a_504_leaves_no_unretrieved_future_in_the_log(scripted):
    import httpx

    upstream, _ = scripted([("hang", 20)])
    proc, url = start_server(
        "--backend", "openai", "--base-url", upstream, "--model", "m", "--method", "spm-zeroshot", "--samples", "1",
        "--no-cache", "--max-retries", "0", "--decision-timeout", "2", "--timeout", "60",
    )  # fmt: skip
    try:
        body = {"question": "Q?", "responses": ["a", "b"], "target": {"care": 1.0}}
        for seed in range(2):
            res = httpx.post(f"{url}/v1/choose", json={**body, "seed": seed}, timeout=60)
            assert res.status_code == 504
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert b"never retrieved" not in err and b"Traceback" not in err, err[-2000:]


def test_a_cancelled_deadline_stops_llama_cpp_within_a_token(llamacpp_backend):
    """The deadline is checked before every decode, from Python: a raised exception stops the
    generation (a logits processor, run as a ctypes callback, could not)."""
    import threading
    import time

    from pluralign.prediction.judges.base import ChatMessage, GenerationSettings, JudgeRequest
    from pluralign.support.deadline import Deadline, deadline
    from pluralign.support.errors import DeadlineExceeded

    # the grammar forces 2,000 characters (hundreds of tokens), so the answer cannot be complete
    # before the cancel at 0.5 s, however short a story the model would like to write
    story = {"type": "string", "minLength": 2000}
    schema = {"type": "object", "properties": {"story": story}, "required": ["story"]}
    request = JudgeRequest(
        messages=[ChatMessage(role="user", content="Write a very long story about a lighthouse, in JSON.")],
        json_schema=schema,
        settings=GenerationSettings(max_tokens=2000, temperature=0.0),
    )
    handle = Deadline(None, "decision")
    threading.Timer(0.5, handle.cancel, args=("the client went away",)).start()
    started = time.monotonic()
    with deadline(None, handle=handle), pytest.raises(DeadlineExceeded, match="the client went away"):
        llamacpp_backend.generate([request])
    assert time.monotonic() - started < 4  # 2,000 characters would take far longer
