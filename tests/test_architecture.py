"""Issue 10: one settings object, registries that a new file joins, one owner per file format."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pluralign.judges as judges_package
import pluralign.methods as methods_package
from conftest import CHOOSE_ARGS
from pluralign.errors import InputError
from pluralign.methods import registry as method_registry
from pluralign.settings import DEFAULT_TEMPERATURE, Settings, make_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_defaults_live_in_one_place():
    src = ROOT / "src" / "pluralign"
    offenders = []
    for path in src.rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        for pattern in (r"temperature[^\n]*=\s*0\.7", r"max_tokens[^\n]*=\s*1024", r"\bn_ctx[^\n]*=\s*8192"):
            if re.search(pattern, text):
                offenders.append(f"{path.name}: {pattern}")
    assert offenders == []
    assert Settings(scoring="sample").sampling_temperature == DEFAULT_TEMPERATURE == 0.7


def test_cli_options_come_from_the_settings(cli):
    res = cli("eval", "--help", env={"COLUMNS": "250"})
    text = " ".join(res.stdout.split())
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "cli_group" in extra:
            flag = extra.get("cli_flag") or "--" + name.replace("_", "-")
            assert flag in text, flag
    assert "[default: 1024]" in text and "qwen2.5-coder-1.5b" in text


def test_incompatible_settings_are_rejected_not_changed():
    with pytest.raises(InputError, match="--scoring logprobs decodes greedily"):
        make_settings({"scoring": "logprobs", "temperature": 0.7})
    with pytest.raises(InputError, match="--samples: Input should be greater than or equal to 1"):
        make_settings({"samples": 0})
    auto = make_settings({})
    assert auto.scoring_mode == "logprobs" and auto.sampling_temperature == 0.0
    assert make_settings({"scoring": "logprobs", "samples": 4}).samples == 4  # four greedy passes, four orders
    assert make_settings({"samples": 3}).scoring_mode == "sample"
    assert make_settings({"backend": "openai"}).scoring_mode == "sample"


def test_per_request_overrides_are_copies(tmp_path: Path):
    from pluralign.icl import ExampleSelector, builtin_bank
    from pluralign.methods.spm import ComparativeRegression

    class NoCalls:
        name, model = "none", "none"

    base = make_settings({"samples": 2})
    method = ComparativeRegression(NoCalls(), base, ExampleSelector(builtin_bank(), index="bm25"))  # type: ignore[arg-type]
    copy = method.with_settings(base.override(samples=4))
    assert (method.samples, copy.samples) == (2, 4)
    assert copy.examples is method.examples and copy.backend is method.backend  # shared, not reloaded
    assert base.samples == 2  # frozen: never changed in place
    with pytest.raises(Exception, match="frozen"):
        base.samples = 3  # type: ignore[misc]


def test_cache_key_leaves_out_what_cannot_change_an_answer():
    from pluralign.cache import request_key
    from pluralign.judges.base import ChatMessage, GenerationSettings, JudgeRequest

    def req(**kw):
        return JudgeRequest(
            messages=[ChatMessage(role="user", content="q")], json_schema={}, settings=GenerationSettings(**kw)
        )

    assert request_key("b", "m", req(max_attempts=1)) == request_key("b", "m", req(max_attempts=5))
    assert request_key("b", "m", req(seed=1)) != request_key("b", "m", req(seed=2))
    assert request_key("b", "m", req(temperature=0.0)) != request_key("b", "m", req(temperature=0.7))


def test_unknown_names_list_the_registered_ones(cli):
    res = cli("eval", "--method", "magic", "--benchmark", "x", "--out", "y")
    assert res.returncode == 2 and "unknown method 'magic' (choose from spm, spm-zeroshot" in res.stderr
    res = cli(
        *CHOOSE_ARGS,
        "--method",
        "spm-zeroshot",
        "--backend",
        "carrier-pigeon",
    )
    assert res.returncode == 2 and "unknown backend 'carrier-pigeon' (choose from batch, llamacpp, openai" in res.stderr
    listed = cli("methods").stdout
    for name, spec in method_registry.methods().items():
        assert name in listed and spec.summary in listed


def _readme_example() -> str:
    block = README.split("## Extending", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert "src/pluralign/methods/longest.py" in block
    return block


def test_a_new_method_is_one_file(tmp_path: Path, monkeypatch):
    """The README's example, dropped into the methods package's search path, is listed,
    built and evaluated like any other method."""
    extra = tmp_path / "more_methods"
    extra.mkdir()
    (extra / "longest.py").write_text(_readme_example())
    monkeypatch.setattr(methods_package, "__path__", [*methods_package.__path__, str(extra)])
    monkeypatch.setattr(method_registry, "_discovered", False)
    try:
        assert "longest" in method_registry.methods()
        method = method_registry.build_method("longest")
        from pluralign.probes import Probe
        from pluralign.targets import AlignmentTarget

        probe = Probe(prompt="q", responses=["short", "a longer one"])
        judgement = method.judge(probe, [])
        assert method.choose(judgement, AlignmentTarget(values={"care": 1.0})).index == 1
    finally:
        method_registry._METHODS.pop("longest", None)


def test_a_new_backend_is_one_file(tmp_path: Path, monkeypatch):
    extra = tmp_path / "more_judges"
    extra.mkdir()
    (extra / "echo.py").write_text(
        "from pluralign.judges import BackendSpec, register_backend\n"
        "from pluralign.judges.base import JudgeResult\n\n\n"
        "class Echo:\n"
        "    name = 'echo'\n\n"
        "    def __init__(self, model):\n"
        "        self.model = model\n\n"
        "    def generate(self, requests):\n"
        "        return [JudgeResult(outputs=[{'choice': 'A', 'reasoning': 'first'}], raw=['']) for _ in requests]\n\n"
        "    def close(self):\n"
        "        pass\n\n\n"
        "register_backend(BackendSpec(name='echo', summary='answers A', build=lambda s: Echo(s.model)))\n"
    )
    monkeypatch.setattr(judges_package, "__path__", [*judges_package.__path__, str(extra)])
    monkeypatch.setattr(judges_package, "_discovered", False)
    try:
        assert "echo" in judges_package.backends()
        from pluralign.api import Chooser

        chooser = Chooser("unaligned", make_settings({"backend": "echo", "cache": False}))
        assert chooser.choose("q", ["x", "y"], {"care": 1.0}).reasoning == "first"
    finally:
        judges_package._BACKENDS.pop("echo", None)


def test_no_module_reads_run_files_but_the_run_folder_owner():
    src = ROOT / "src" / "pluralign"
    for path in src.rglob("*.py"):
        if path.name in ("runs.py",):
            continue
        text = path.read_text()
        assert '"decisions.jsonl"' not in text and '"judgements.jsonl"' not in text, path
        assert not ('"results.json"' in text and "read_json" in text), path
