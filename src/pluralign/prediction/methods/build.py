"""Building a method from settings: the options it reads, refusing those it would not, and the
:class:`SettingsResources` (the judge behind its cache, few-shot examples) it may ask for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pluralign.prediction.methods.registry import MethodSpec, method_spec
from pluralign.settings import Settings
from pluralign.support.options import Options, validate

if TYPE_CHECKING:
    from pluralign.choice.probes import Probe
    from pluralign.prediction.examples import ExampleOptions
    from pluralign.prediction.judges.base import Backend
    from pluralign.prediction.methods.base import Method


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
    from pluralign.settings import judge_components

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
