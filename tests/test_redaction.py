"""No secret in any output: every key or credential the configuration names is registered for
redaction when its option is validated, whichever component reads it; credentials in URLs are
masked in any position; the masker leaves ordinary text whole."""

from __future__ import annotations

import pytest

from support import one_line_error, openai_choose, run_cli

ASK = "My neighbour asks me to water her plants. What do I say?"


@pytest.mark.parametrize(
    ("text", "secrets", "kept"),
    [
        ("http://u:FILE-hunter3@x@127.0.0.1:9/v1 failed", ["FILE-hunter3", "hunter3@x"], ["127.0.0.1:9/v1 failed"]),
        ("https://h/v1?token=tok123&sig=abc456&page=2", ["tok123", "abc456"], ["page=2"]),
        ("GET /x?api_key=k1k1k1;access_token=k2k2k2 HTTP/1.1", ["k1k1k1", "k2k2k2"], ["HTTP/1.1"]),
        ("https://h/p?X-Amz-Signature=deadbeef01&X-Amz-Credential=AKIA/2026", ["deadbeef01", "AKIA"], ["https://h/p"]),
        ("send X-API-Key, or Authorization: Bearer with the key", [], ["Authorization: Bearer with the key"]),
        ("Authorization: Bearer abcdefghijklmnop", ["abcdefghijklmnop"], ["Authorization: Bearer"]),
        ("Authorization: Bearer abc.def.ghi", ["abc.def.ghi"], ["Authorization: Bearer"]),
        ("postgresql://pl:pa@ss/word@db:5432/pl", ["pa@ss", "ss/word"], ["db:5432/pl"]),
        ("see http://127.0.0.1:8000/v1 and me@example.com", [], ["http://127.0.0.1:8000/v1", "me@example.com"]),
        # where a URL sits in a word (the pattern is tried where a word starts)
        ("base_url=http://u:pw7secret@h/v1", ["pw7secret"], ["base_url=http://", "@h/v1"]),
        ('{"url":"postgres://u:pw7secret@h/db"}', ["pw7secret"], ['{"url":"postgres://', '@h/db"}']),
        ("(git+ssh://u:pw7secret@h/r.git)", ["pw7secret"], ["(git+ssh://", "@h/r.git)"]),
        ("<http://u:pw7secret@h>", ["pw7secret"], ["<http://", "@h>"]),
        ("a://b c http://u:pw7secret@h", ["pw7secret"], ["a://b c http://"]),
        ("http://h/?next=http://u:pw7secret@h2", ["pw7secret"], ["http://"]),
        ("GET /x?" + "k" * 300 + "_key=pw7secret", ["pw7secret"], ["k" * 300 + "_key="]),
        ("x" * 600 + " http://u:pw7secret@h", ["pw7secret"], ["x" * 600]),
    ],
)
def test_credentials_in_any_position_are_masked_and_nothing_else(text, secrets, kept):
    from pluralign.support.errors import one_line

    shown = one_line(text)
    for secret in secrets:
        assert secret not in shown, (secret, shown)
    for part in kept:
        assert part in shown, (part, shown)


def test_every_secret_an_option_names_is_registered_when_it_is_validated(monkeypatch):
    from pluralign.prediction.generators import GeneratorOptions
    from pluralign.prediction.judges.openai import OpenAIOptions
    from pluralign.server.config import ServiceOptions
    from pluralign.support.errors import one_line

    values = {
        "PL_T_GEN": "generator-secret-111",
        "PL_T_JUDGE": "judge-secret-222",
        "OPENAI_API_KEY": "default-judge-secret-333",
        "PL_T_SERVICE": "service-secret-444",
        "PL_T_APP": "namespace-secret-555",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    GeneratorOptions(generator_api_key_env="PL_T_GEN", generator_base_url="http://bob:url-pass-666@h/v1")
    OpenAIOptions(judge_api_key_env="PL_T_JUDGE", base_urls=["http://h/v1?key=url-key-777"])
    OpenAIOptions()  # the default variable, OPENAI_API_KEY, counts too
    ServiceOptions(service_key_env="PL_T_SERVICE", namespace_key_env=["app=PL_T_APP"])
    echoed = "upstream said: " + " ".join([*values.values(), "url-pass-666", "url-key-777"])
    shown = one_line(echoed)
    assert shown.startswith("upstream said:") and not any(v in shown for v in [*values.values(), "url-pass-666"])
    assert "url-key-777" not in shown


@pytest.mark.parametrize("status", [401, 500])
def test_respond_never_prints_a_key_its_generator_echoes(scripted, tmp_path, status):
    secret = "tok-GENSECRET-987654"
    upstream, _ = scripted([("echo", status)])
    res = run_cli(
        "respond", "--target", '{"care": 1}', "--question", ASK, "--method", "random",
        "--generator-base-url", f"{upstream}/v1", "--generator-api-key-env", "PL_T_GENKEY",
        env={"PL_T_GENKEY": secret, "PLURALIGN_HOME": str(tmp_path)}, timeout=120,
    )  # fmt: skip
    one_line_error(res, "the generator")
    assert secret not in res.stderr + res.stdout and "GENSECRET" not in res.stderr
    assert "ReadError" not in res.stderr and "Task exception" not in res.stderr  # nothing after the one line


def test_a_base_url_with_a_raw_at_in_its_password_or_a_token_in_its_query_never_appears(tmp_path):
    res = openai_choose("http://user:FILE-hunter3@x@127.0.0.1:9/v1?token=qtok-5555", "--timeout", "2")
    one_line_error(res, "unreachable")
    for secret in ("FILE-hunter3", "hunter3@x", "qtok-5555"):
        assert secret not in res.stderr + res.stdout, res.stderr


def test_a_long_upstream_refusal_keeps_its_end_and_never_a_piece_of_a_key_at_the_cut(scripted):
    """An upstream's refusal is shown on one line with its beginning and its end (where the reason
    often is), redacted before it is cut: a key that the cut falls inside shows no piece of itself."""
    secret = "QZK7-judge-key-4455"
    body = "upstream-refused:" + "x" * 83 + secret + "y" * 600 + " the reason: parameter temperature_x is unsupported"
    upstream, _ = scripted([("fail", 400, {}, body)])
    res = openai_choose(upstream, "--judge-api-key-env", "PL_T_CUTKEY", env={"PL_T_CUTKEY": secret})
    one_line_error(res, "answered 400", "upstream-refused:", "temperature_x is unsupported")
    assert "QZK7" not in res.stderr + res.stdout and "4455" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and len(res.stderr) < 400, res.stderr


@pytest.mark.parametrize("command", ["choose", "eval", "reasonings"])
def test_no_command_prints_a_key_its_judge_echoes(scripted, helpsteer2_dir, tmp_path, command):
    secret = "judge-KEY-0987654321"
    upstream, _ = scripted([("echo", 401)])
    judge = ["--backend", "openai", "--base-url", f"{upstream}/v1", "--model", "m", "--max-retries", "0", "--no-cache",
             "--judge-api-key-env", "PL_T_JUDGEKEY"]  # fmt: skip
    if command == "choose":
        args = ["choose", "--target", '{"care": 1}', "--question", "q", "--response", "a", "--response", "b",
                "--method", "spm-zeroshot", "--samples", "1", *judge]  # fmt: skip
    elif command == "eval":
        args = ["eval", "--benchmark", str(helpsteer2_dir), "--method", "spm-zeroshot", "--samples", "1", "--limit",
                "1", "--target", "high", "--out", str(tmp_path / "run"), "--on-invalid", "stop", *judge]  # fmt: skip
    else:
        bench = tmp_path / "bench"
        bench.mkdir()
        (bench / "train.json").write_text((helpsteer2_dir / "train.json").read_text())
        args = ["data", "reasonings", "--benchmark", str(bench), "--limit", "1", "--overwrite", *judge]
    res = run_cli(*args, env={"PL_T_JUDGEKEY": secret, "PLURALIGN_HOME": str(tmp_path / "home")}, timeout=120)
    one_line_error(res, "refused the API key")
    assert secret not in res.stderr + res.stdout and "0987654321" not in res.stderr


@pytest.mark.parametrize("seed", ["-1", "2147483648", "99999999999999999999999"])
def test_a_seed_out_of_range_is_one_line(seed):
    res = run_cli("choose", "--target", '{"care": 1}', "--question", "q", "--response", "a", "--response", "b",
                  "--method", "random", "--seed", seed)  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr and "--seed" in res.stderr, res.stderr
