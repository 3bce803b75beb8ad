"""How a method and its judge run: one object for the CLI, the Python API and the service, and
the method (:func:`build_method`) and generator (:func:`build_generator`) built from it.

Settings composes the options that components declare next to their code: which judge
(:class:`pluralign.prediction.judges.JudgeOptions`) and the cache
(:class:`pluralign.prediction.judges.cache.CacheOptions`) as fields, and every registered
backend's and method's options model by name in ``values`` (only the options that were given;
each component fills in its own defaults). So a new backend or method with options of its own
is still one new file. Settings are frozen: a
per-request change is a copy (:meth:`Settings.override`).

Settings stand above :mod:`pluralign.prediction`: they compose what its components declare, and
nothing in it imports them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, ValidationError, model_validator

from pluralign.prediction.judges import JudgeOptions
from pluralign.prediction.judges.cache import CacheOptions
from pluralign.prediction.methods.registry import MethodSpec, method_spec
from pluralign.support.errors import InputError
from pluralign.support.options import Options, fields_of, flag_of, input_error, validate

if TYPE_CHECKING:
    from pluralign.choice.probes import Probe
    from pluralign.prediction.examples import ExampleOptions
    from pluralign.prediction.generators import Generator, GeneratorOptions
    from pluralign.prediction.judges.base import Backend
    from pluralign.prediction.methods.base import Method

OptionsT = TypeVar("OptionsT", bound=Options)

RENAMED = {"scoring": "estimator", "scorer": "regressor", "api_key_env": "judge_api_key_env"}
"""Option names of v0.2 that still work, with a DeprecationWarning."""


def _unique(models: Iterable[type[Options]]) -> list[type[Options]]:
    out: list[type[Options]] = []
    for model in models:
        if model not in out:
            out.append(model)
    return out


def judge_components(backend: str | None = None) -> list[type[Options]]:
    """The options of the judge: which one, the cache, and the backend's own (every
    backend's when ``backend`` is None)."""
    from pluralign.prediction.judges import backend_spec, backends

    specs = [backend_spec(backend)] if backend is not None else list(backends().values())
    return _unique([JudgeOptions, CacheOptions, *(s.options for s in specs)])


def components() -> list[type[Options]]:
    """Every options model a method and its judge may read, each once."""
    from pluralign.prediction.methods.registry import methods

    return _unique([*judge_components(), *(s.options for s in methods().values())])


class Settings(JudgeOptions, CacheOptions):
    """The judge, the cache, and the options given for backends and methods."""

    benchmark_dir: Path | None = Field(default=None, description="Benchmark whose train set gives examples.")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Backend and method options that were given, by name."
    )

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any) -> Any:
        """Flat keywords (``Settings(samples=3)``): a name that is not a field here is a
        component's option."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        for old, new in RENAMED.items():
            if old in data:
                warnings.warn(f"the option {old!r} is now {new!r}", DeprecationWarning, stacklevel=2)
                data.setdefault(new, data.pop(old))
        own = {k: v for k, v in data.items() if k in cls.model_fields}
        rest = {k: v for k, v in data.items() if k not in cls.model_fields}
        if rest:
            own["values"] = {**dict(own.get("values") or {}), **rest}
        return own

    @model_validator(mode="after")
    def _each_component_accepts_its_values(self) -> Settings:
        declared: set[str] = set()
        for model in components():
            declared |= set(model.model_fields)
            given = self.values_for(model)
            if given:
                validate(model, given)  # raises an InputError naming the flag
        unknown = sorted(set(self.values) - declared)
        if unknown:
            raise InputError(f"unknown option {unknown[0]!r}")
        return self

    def values_for(self, model: type[Options]) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k in model.model_fields}

    def options(self, model: type[OptionsT]) -> OptionsT:
        """``model`` with the values given for it (its own defaults for the rest)."""
        return validate(model, self.values_for(model))

    def cache_options(self) -> CacheOptions:
        given = {name: getattr(self, name) for name in CacheOptions.model_fields if name in self.model_fields_set}
        return CacheOptions.model_validate(given)

    def given(self) -> set[str]:
        """The option names that were set, not left at their defaults."""
        return (self.model_fields_set - {"values", "benchmark_dir"}) | set(self.values)

    def refuse_unused(self, models: Iterable[type[Options]], where: str) -> None:
        """An InputError naming every given option that none of ``models`` reads: a flag is
        never silently ignored."""
        read = {name for model in models for name in model.model_fields}
        unused = sorted(self.given() - read)
        if unused:
            fields = fields_of(components())
            flags = ", ".join(flag_of(name, fields.get(name)) for name in unused)
            raise InputError(f"{flags} {'does' if len(unused) == 1 else 'do'} not apply to {where}")

    def override(self, **changes: Any) -> Settings:
        """A validated copy with some options changed (None values are ignored)."""
        own = {k: getattr(self, k) for k in self.model_fields_set if k != "values"}
        return make_settings({**own, **self.values, **{k: v for k, v in changes.items() if v is not None}})


def make_settings(values: Mapping[str, Any] | None = None, **more: Any) -> Settings:
    """Settings from plain values, or an InputError naming the option at fault."""
    try:
        return Settings.model_validate({**(values or {}), **more})
    except ValidationError as exc:
        raise input_error(exc, fields_of(components())) from None


# ---- what settings build ------------------------------------------------------------------


class SettingsResources:
    """What a method may need besides its options (:class:`~pluralign.prediction.methods.registry.Resources`),
    built on demand from :class:`Settings`."""

    def __init__(self, settings: Settings, namespace: str) -> None:
        self.settings = settings
        self.namespace = namespace

    @property
    def default_estimator(self) -> Any:
        from pluralign.prediction.judges import backend_spec

        return backend_spec(self.settings.backend).default_estimator

    def judge(self) -> Backend:
        """The judge backend with its options, behind the judgement cache unless it is off."""
        from pluralign.prediction.judges import backend_spec
        from pluralign.prediction.judges.cache import CachedBackend

        spec = backend_spec(self.settings.backend)
        cache = self.settings.cache_options().open()
        backend = spec.build(self.settings.model, self.settings.options(spec.options), cache)
        if cache is not None:
            return CachedBackend(backend, cache, self.namespace)
        return backend

    def train_probes(self, options: ExampleOptions) -> list[Probe]:
        """Labelled examples: ``--examples``, else the benchmark's train set, else the shipped bank."""
        from pluralign.choice.probes import load_probes
        from pluralign.prediction.examples import builtin_bank

        if options.examples is not None:
            path = options.examples
            return load_probes(path / "train.json" if path.is_dir() else path)
        bench = self._benchmark_train()
        return load_probes(bench) if bench is not None else builtin_bank()

    def uses_builtin_bank(self, options: ExampleOptions) -> bool:
        """Whether the examples are pluralign's own bank (no --examples, no benchmark)."""
        return options.examples is None and self._benchmark_train() is None

    def _benchmark_train(self) -> Path | None:
        bench = self.settings.benchmark_dir
        return bench / "train.json" if bench is not None and (bench / "train.json").exists() else None


def read_options(spec: MethodSpec, backend: str) -> list[type[Options]]:
    """The options models a method reads: its own, and with an LLM judge the judge's, the
    cache's and the backend's."""
    return [spec.options, *(judge_components(backend) if spec.needs_llm else [])]


def check_applicable(spec: MethodSpec, settings: Settings) -> None:
    """Refuse options the method would not read."""
    models = read_options(spec, settings.backend)
    where = f"--method {spec.name}" + (f" with --backend {settings.backend}" if spec.needs_llm else "")
    settings.refuse_unused(models, where)


def build_method(name: str, settings: Settings | None = None) -> Method:
    """The named method, configured by ``settings`` (defaults when None); options it would
    not read are refused."""
    spec = method_spec(name)
    settings = settings or Settings()
    check_applicable(spec, settings)
    options = validate(spec.options, settings.values_for(spec.options))
    return spec.build(options, SettingsResources(settings, name))


def build_generator(options: GeneratorOptions, settings: Settings) -> Generator:
    """The generator ``options`` name: a server, or the local model (the judge's by default) with
    the judge's llama.cpp options, the same loaded model when it is the judge's."""
    if options.generator_base_url is not None:
        from pluralign.prediction.generators.openai import OpenAIGenerator

        return OpenAIGenerator(options)
    from pluralign.prediction.generators.llamacpp import LlamaCppGenerator
    from pluralign.prediction.judges.llamacpp import LlamaCppOptions

    return LlamaCppGenerator(options.generator_model or settings.model, settings.options(LlamaCppOptions))


__all__ = [
    "Settings",
    "SettingsResources",
    "build_generator",
    "build_method",
    "check_applicable",
    "components",
    "judge_components",
    "make_settings",
    "read_options",
]
