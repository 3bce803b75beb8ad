"""Options: each component declares its own, Settings composes them, a command offers and
accepts only what it runs, old names still work with a warning."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

from pluralign.prediction.judges import BACKENDS, backend_spec
from pluralign.prediction.judges.llamacpp import LlamaCppBackend
from pluralign.prediction.judges.openai import OpenAIBackend, OpenAIOptions
from pluralign.prediction.judges.transformers import TransformersBackend
from pluralign.prediction.methods.llm import DEFAULT_TEMPERATURE
from pluralign.prediction.methods.registry import METHODS
from pluralign.prediction.methods.spm import SpmOptions, ZeroShotOptions
from pluralign.settings import Settings, build_method, components, make_settings
from pluralign.support.errors import InputError
from pluralign.support.options import Options, fields_of, flag_of
from support import CHOOSE_ARGS, one_line_error, run_cli


def test_every_option_is_declared_once_with_one_flag():
    fields = fields_of(components())  # raises if two components declare a name differently
    flags = [flag_of(name, info) for name, info in fields.items()]
    assert len(flags) == len(set(flags))
    assert {"samples", "n_ctx", "base_urls", "judge_api_key_env", "regressor", "estimator"} <= set(fields)


def test_backends_take_their_options_model_not_restated_defaults():
    for cls in (LlamaCppBackend, OpenAIBackend, TransformersBackend):
        assert list(inspect.signature(cls).parameters) == ["model", "options"], cls
    backend = OpenAIBackend("m", OpenAIOptions(base_urls=["http://127.0.0.1:9/v1"]))
    defaults = OpenAIOptions()
    assert (backend.concurrency, backend.timeout, backend.client.retry.max_retries) == (
        defaults.concurrency,
        defaults.timeout,
        defaults.max_retries,
    )


def test_incompatible_options_are_rejected_not_changed():
    with pytest.raises(InputError, match="--estimator logprobs decodes greedily"):
        make_settings({"estimator": "logprobs", "temperature": 0.7})
    with pytest.raises(InputError, match="--samples: Input should be greater than or equal to 1"):
        make_settings({"samples": 0})
    with pytest.raises(InputError, match="--base-url: List should have at least 1 item"):
        make_settings({"backend": "openai", "base_urls": []})
    with pytest.raises(InputError, match="unknown option 'sampels'"):
        make_settings({"sampels": 3})


def test_auto_estimator_follows_the_backend_and_the_given_options():
    assert backend_spec("llamacpp").default_estimator == "logprobs"
    assert backend_spec("openai").default_estimator == "sample"
    assert ZeroShotOptions().mode("logprobs") == "logprobs"
    assert ZeroShotOptions(samples=3).mode("logprobs") == "sample"
    assert ZeroShotOptions().mode("sample") == "sample"
    assert ZeroShotOptions(estimator="logprobs", samples=4).mode("sample") == "logprobs"  # four greedy passes
    assert DEFAULT_TEMPERATURE == 0.7


def test_per_request_overrides_are_copies():
    from pluralign.prediction.examples import ExampleSelector, builtin_bank
    from pluralign.prediction.methods.spm import ComparativeRegression

    class NoCalls:
        name, model = "none", "none"

    base = SpmOptions(samples=2)
    method = ComparativeRegression(NoCalls(), base, ExampleSelector(builtin_bank(), index="bm25"))  # type: ignore[arg-type]
    copy = method.with_options(base.override(samples=4))
    assert (method.samples, copy.samples) == (2, 4)
    assert copy.examples is method.examples and copy.backend is method.backend  # shared, not reloaded
    assert base.samples == 2
    with pytest.raises(Exception, match="frozen"):
        base.samples = 3  # type: ignore[misc]
    with pytest.raises(InputError, match="--samples"):
        base.override(samples=0)


@pytest.mark.parametrize(
    ("method", "values", "message"),
    [
        ("random", {"samples": 3}, "--samples does not apply to --method random"),
        ("oracle", {"model": "x", "n_ctx": 512}, "--model, --n-ctx do not apply to --method oracle"),
        ("embedding", {"cache": False}, "--no-cache does not apply to --method embedding"),
        ("spm-zeroshot", {"n_examples": 2}, "--n-examples does not apply to --method spm-zeroshot"),
        ("regression", {"shuffle": False}, "--no-shuffle does not apply to --method regression"),
        ("spm", {"backend": "openai", "n_ctx": 4096}, "--n-ctx does not apply to --method spm with --backend openai"),
        ("unaligned", {"regressor": "knn"}, "--regressor does not apply"),
    ],
)
def test_an_option_the_method_would_not_read_is_refused(method: str, values: dict, message: str):
    with pytest.raises(InputError, match=message):
        build_method(method, make_settings(values))


def test_a_pool_size_is_taken_only_for_a_postgresql_cache():
    """A pool a SQLite cache would ignore is refused, not dropped; for a server it reaches the
    cache's options, and a per-request copy keeps it."""
    assert make_settings({}).cache_options().cache_pool == 8
    for values in ({"cache_pool": 2}, {"cache_pool": 2, "cache_path": "c.sqlite"}):
        with pytest.raises(InputError, match="--cache-pool applies to a postgresql:// --cache"):
            make_settings(values)
    settings = make_settings({"cache_pool": 2, "cache_path": "postgresql://u@127.0.0.1/db"})
    assert settings.cache_options().cache_pool == 2 and settings.override(samples=3).cache_options().cache_pool == 2


def test_old_option_names_still_work_in_python_with_a_warning():
    with pytest.warns(DeprecationWarning, match="'scoring' is now 'estimator'"):
        settings = Settings(scoring="sample")
    assert settings.values == {"estimator": "sample"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Settings(regressor="knn").values == {"regressor": "knn"}


def test_the_method_registry_lists_default_samples_from_the_options():
    specs = METHODS.all()
    assert specs["spm"].default_samples == 5 and specs["unaligned"].default_samples == 1
    assert specs["random"].default_samples is None
    assert all(issubclass(s.options, Options) for s in BACKENDS.all().values())


def test_cli_offers_every_component_option(cli):
    text = " ".join(cli("eval", "--help", env={"COLUMNS": "250"}).stdout.split())
    for name, info in fields_of(components()).items():
        assert flag_of(name, info) in text, name
    assert "[default: 1024]" in text and "qwen2.5-coder-1.5b" in text
    assert "--scoring" not in text  # old flags work but are not offered


def test_a_command_offers_only_the_options_of_what_it_runs(cli, tmp_path: Path):
    help_text = cli("data", "reasonings", "--help", env={"COLUMNS": "250"}).stdout
    assert "--max-tokens" in help_text and "--n-ctx" in help_text
    for absent in ("--samples", "--regressor", "--estimator", "--scale"):
        assert absent not in help_text, absent
    res = cli("data", "reasonings", "--benchmark", str(tmp_path), "--samples", "3")
    assert res.returncode == 2 and "No such option: --samples" in res.stderr
    res = cli("data", "reasonings", "--benchmark", str(tmp_path), "--base-url", "http://127.0.0.1:9/v1")
    assert res.returncode == 2 and "--base-url does not apply to --backend llamacpp" in res.stderr


def test_unknown_names_list_the_registered_ones(cli):
    res = cli("eval", "--method", "magic", "--benchmark", "x", "--out", "y")
    assert res.returncode == 2 and "unknown method 'magic' (choose from spm, spm-zeroshot" in res.stderr
    res = cli(*CHOOSE_ARGS, "--method", "spm-zeroshot", "--backend", "carrier-pigeon")
    assert res.returncode == 2 and "unknown backend 'carrier-pigeon' (choose from batch, llamacpp, openai" in res.stderr
    listed = cli("methods").stdout
    for name, spec in METHODS.all().items():
        assert name in listed and spec.summary in listed


def test_the_judges_key_and_the_services_key_have_their_own_names(cli):
    judge = " ".join(cli("eval", "--help", env={"COLUMNS": "250"}).stdout.split())
    serve = " ".join(cli("serve", "--help", env={"COLUMNS": "250"}).stdout.split())
    assert "--judge-api-key-env" in judge and "--service-key-env" not in judge
    assert "--judge-api-key-env" in serve and "--service-key-env" in serve
    res = cli("serve", "--method", "random", "--api-key-env", "PLURALIGN_SURELY_UNSET_KEY")
    assert "warning: --api-key-env is deprecated; use --service-key-env" in res.stderr
    assert res.returncode == 2 and "--service-key-env PLURALIGN_SURELY_UNSET_KEY" in res.stderr


@pytest.mark.parametrize("flag", ["--max-profile-grid", "--max-group-members", "--max-profile-work"])
def test_profile_and_group_limits_are_serve_flags_checked_before_start(flag):
    res = run_cli("serve", "--method", "random", flag, "0", timeout=60)
    one_line_error(res, flag, "greater than or equal to 1")
