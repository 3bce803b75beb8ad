"""Shared plumbing of the methods that ask an LLM judge: settings, shuffles, call accounting."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

from pluralign.judges.base import Backend, GenerationSettings, JudgeResult
from pluralign.methods.base import CallStats, Method
from pluralign.prompts import REASONING_MAX, PromptSet
from pluralign.settings import Settings


def shuffles(n_responses: int, n_samples: int, seed: int, attribute: str, shuffle: bool = True) -> list[list[int]]:
    """One order per sample: order[j] is the original index shown at letter j."""
    rng = random.Random(f"{seed}:{attribute}")
    base = list(range(n_responses))
    return [rng.sample(base, n_responses) if shuffle else list(base) for _ in range(n_samples)]


def stats_of(results: Sequence[JudgeResult]) -> CallStats:
    stats = CallStats(requests=len(results))
    for r in results:
        if r.cached:
            stats.cached += 1
        else:
            stats.calls += r.attempts
            stats.prompt_tokens += r.usage.prompt_tokens
            stats.completion_tokens += r.usage.completion_tokens
            stats.llm_seconds += r.seconds
    return stats


class LLMMethod(Method):
    """A method that sends prompts to a judge backend.

    ``samples`` is resolved once from the settings and the method's default; a per-request
    change of settings makes a copy (:meth:`with_settings`) that shares the loaded judge.
    """

    default_samples = 1

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self.backend = backend
        self.settings = settings
        self.prompts = PromptSet(settings.prompts)

    @property
    def samples(self) -> int:
        return self.settings.samples_or(self.default_samples)

    @property
    def scale(self) -> int:
        return self.settings.scale

    def with_settings(self, settings: Settings) -> LLMMethod:
        """A shallow copy with other settings: same judge, same example index."""
        clone = copy.copy(self)
        clone.settings = settings
        if settings.prompts != self.settings.prompts:
            clone.prompts = PromptSet(settings.prompts)
        return clone

    def generation(self, seed: int, n: int = 1, items: int = 1, top_logprobs: int = 0) -> GenerationSettings:
        """``items`` reasonings of up to REASONING_MAX characters must fit, or a rambling judge is
        cut off mid-string and every re-ask fails the same way."""
        budget = max(self.settings.max_tokens, items * (REASONING_MAX + 40) + 32)
        return GenerationSettings(
            temperature=self.settings.sampling_temperature,
            max_tokens=budget,
            seed=seed,
            n=n,
            top_logprobs=top_logprobs,
            max_attempts=self.settings.max_attempts,
        )

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "backend": self.backend.name,
            "model": self.backend.model,
            "samples": self.samples,
            "temperature": self.settings.sampling_temperature,
            "max_tokens": self.settings.max_tokens,
            "scale": self.scale,
            **self.prompts.config(),
        }

    def close(self) -> None:
        self.backend.close()
