"""Candidate generators: where the responses come from when an application has one prompt and
wants the answer that fits a person (``/v1/chat/completions``, ``pluralign respond``).

One generator per file behind :class:`Generator`: an OpenAI-compatible server
(:mod:`.openai`: vLLM, SGLang, Ollama, llama.cpp's server, OpenAI) or a GGUF model in
process (:mod:`.llamacpp`). Candidates are drawn for diversity: at ``temperature`` (0.8 by
default: varied wording and stance while staying on topic; greedy decoding would give the
same answer k times) with the seeds seed, seed+1, ...
:func:`pluralign.settings.build_generator` builds the one the settings name.
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

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_GENERATOR_TEMPERATURE",
    "Candidates",
    "Draw",
    "Generator",
    "GeneratorOptions",
]
