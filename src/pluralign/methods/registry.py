"""One place that maps method names and settings to method objects."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from pluralign.errors import InputError
from pluralign.methods.base import Method
from pluralign.methods.simple import OracleMethod, RandomMethod

METHOD_NAMES = (
    "spm",
    "spm-zeroshot",
    "regression",
    "unaligned",
    "prompt-aligned",
    "embedding",
    "reward-model",
    "random",
    "oracle",
)
LLM_METHODS = {"spm", "spm-zeroshot", "regression", "unaligned", "prompt-aligned"}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class MethodSettings(BaseModel):
    """Options shared by the CLI, the Python API and the server; each method reads its own."""

    benchmark_dir: Path | None = None
    backend: Literal["llamacpp", "openai", "transformers"] = "llamacpp"
    model: str = DEFAULT_MODEL
    base_urls: list[str] = []
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    n_ctx: int = 8192
    samples: int | None = None
    temperature: float = 0.7
    max_tokens: int = 1024
    shuffle: bool = True
    examples: Path | None = None
    similarity: Literal["embedding", "bm25", "random"] = "embedding"
    icl_rule: Literal["levels", "top"] = "levels"
    n_examples: int | None = None
    example_max_chars: int | None = None
    cache: bool = True
    cache_path: Path | None = None
    scorer: Literal["ridge", "knn"] = "ridge"
    scoring: Literal["sample", "logprobs"] = "sample"
    reward_model: str | None = None


def _train_probes(settings: MethodSettings) -> list:  # type: ignore[type-arg]
    from pluralign.data.benchmark import load_probes
    from pluralign.icl import builtin_bank

    if settings.examples is not None:
        path = settings.examples
        return load_probes(path / "train.json" if path.is_dir() else path)
    if settings.benchmark_dir is not None and (settings.benchmark_dir / "train.json").exists():
        return load_probes(settings.benchmark_dir / "train.json")
    return builtin_bank()


def build_method(name: str, settings: MethodSettings | None = None) -> Method:
    settings = settings or MethodSettings()
    if name == "random":
        return RandomMethod()
    if name == "oracle":
        return OracleMethod()
    if name == "embedding":
        from pluralign.methods.embedding import EmbeddingScorer

        probes = _train_probes(settings)
        return EmbeddingScorer(probes, kind=settings.scorer)
    if name == "reward-model":
        from pluralign.methods.reward_model import RewardModelMethod

        if not settings.reward_model:
            raise InputError("the reward-model method needs --reward-model (a Hugging Face id or folder)")
        return RewardModelMethod(settings.reward_model)
    if name not in LLM_METHODS:
        raise InputError(f"unknown method {name!r} (choose from {', '.join(METHOD_NAMES)})")

    from pluralign.cache import CachedBackend, JudgementCache, default_cache_path
    from pluralign.judges import make_backend
    from pluralign.judges.base import Backend

    backend: Backend = make_backend(
        settings.backend,
        settings.model,
        base_urls=settings.base_urls,
        api_key_env=settings.api_key_env,
        concurrency=settings.concurrency,
        n_ctx=settings.n_ctx,
    )
    if settings.cache:
        backend = CachedBackend(backend, JudgementCache(settings.cache_path or default_cache_path()), name)
    common = dict(temperature=settings.temperature, max_tokens=settings.max_tokens)
    if name in ("spm", "spm-zeroshot"):
        from pluralign.icl import ExampleSelector
        from pluralign.methods.spm import ComparativeRegression

        selector = None
        if name == "spm":
            selector = ExampleSelector(
                _train_probes(settings),
                index=settings.similarity,
                rule=settings.icl_rule,
                max_examples=settings.n_examples,
                max_chars=settings.example_max_chars,
            )
        return ComparativeRegression(
            backend,
            examples=selector,
            shuffle=settings.shuffle,
            scoring=settings.scoring,
            samples=settings.samples or 5,
            **common,
        )  # type: ignore[arg-type]
    if name == "regression":
        from pluralign.methods.spm import PerResponseRegression

        return PerResponseRegression(backend, samples=settings.samples or 5, **common)  # type: ignore[arg-type]
    from pluralign.methods.choice import ChoiceMethod

    return ChoiceMethod(backend, aligned=name == "prompt-aligned", samples=settings.samples or 1, **common)  # type: ignore[arg-type]
