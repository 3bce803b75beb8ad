"""Candidate generators: where the responses come from when an application has one prompt and
wants the answer that fits a person (``/v1/chat/completions``, ``pluralign respond``).

One generator per file behind :class:`Generator`: an OpenAI-compatible server
(:mod:`.openai`: vLLM, SGLang, Ollama, llama.cpp's server, OpenAI) or a GGUF model in
process (:mod:`.llamacpp`). Candidates are drawn for diversity: at ``temperature`` (0.8 by
default: varied wording and stance while staying on topic; greedy decoding would give the
same answer k times) with the seeds seed, seed+1, ...
"""

from __future__ import annotations

from pluralign.prediction.generators.base import (
    DEFAULT_CANDIDATES,
    DEFAULT_GENERATOR_TEMPERATURE,
    Candidates,
    Draw,
    Generator,
    GeneratorOptions,
)
from pluralign.settings import Settings


def make_generator(options: GeneratorOptions, settings: Settings) -> Generator:
    """The generator ``options`` name: a server, or the local model (the judge's by default) with
    the judge's llama.cpp options, the same loaded model when it is the judge's."""
    if options.generator_base_url:
        from pluralign.prediction.generators.openai import OpenAIGenerator

        return OpenAIGenerator(options)
    from pluralign.prediction.generators.llamacpp import LlamaCppGenerator
    from pluralign.prediction.judges.llamacpp import LlamaCppOptions

    return LlamaCppGenerator(options.generator_model or settings.model, settings.options(LlamaCppOptions))


__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_GENERATOR_TEMPERATURE",
    "Candidates",
    "Draw",
    "Generator",
    "GeneratorOptions",
    "make_generator",
]
