"""Shared plumbing of the methods that ask an LLM judge: settings, shuffles, call accounting."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pluralign.attributes import Attribute
from pluralign.errors import JudgeError
from pluralign.judges.base import Backend, GenerationSettings, JudgeResult
from pluralign.methods.base import CallStats, Judgement, Method
from pluralign.prompts import REASONING_MAX, PromptSet
from pluralign.settings import Settings


def shuffles(n_responses: int, n_samples: int, seed: int, attribute: str, shuffle: bool = True) -> list[list[int]]:
    """One order per sample: order[j] is the original index shown at letter j."""
    rng = random.Random(f"{seed}:{attribute}")
    base = list(range(n_responses))
    return [rng.sample(base, n_responses) if shuffle else list(base) for _ in range(n_samples)]


def rotations(n_responses: int, n_passes: int, seed: int, attribute: str) -> list[list[int]]:
    """Balanced orders: the rotations of one seeded order, so that in ``n_responses`` passes
    every response is shown at every letter once (a judge's preference for a position then
    cancels out instead of deciding)."""
    base = random.Random(f"{seed}:{attribute}").sample(range(n_responses), n_responses)
    return [base[k % n_responses :] + base[: k % n_responses] for k in range(n_passes)]


@dataclass
class Scores:
    """What a scoring method gathers for one probe, attribute by attribute, before it
    becomes a :class:`Judgement`."""

    n: int
    predictions: list[dict[str, float]] = field(default_factory=list)
    reasonings: list[dict[str, str]] = field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    draws: dict[str, list[list[float]]] = field(default_factory=dict)
    level_probs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.predictions = [{} for _ in range(self.n)]
        self.reasonings = [{} for _ in range(self.n)]

    def set(self, attribute: str, values: Sequence[float], reasons: Sequence[str]) -> None:
        for i in range(self.n):
            self.predictions[i][attribute] = float(values[i])
            self.reasonings[i][attribute] = reasons[i]

    def judgement(self, results: Sequence[JudgeResult]) -> Judgement:
        complete = {a: v for a, v in self.level_probs.items() if len(v) == self.n}
        return Judgement(
            predictions=self.predictions,
            reasonings=self.reasonings,
            samples=self.samples,
            draws=self.draws,
            level_probs=complete or None,
            stats=stats_of(results),
        )


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

    def allowed_scores(self, attribute: Attribute) -> list[int] | None:
        """Single-pass scoring restricts scores to the attribute's label levels (on the scale),
        so the judge's probabilities fall on values the labels can take; sampling does not."""
        if self.settings.scoring_mode != "logprobs":
            return None
        return [round(v * self.scale) for v in attribute.level_values()]

    def first_logprobs(self, result: JudgeResult) -> tuple[list[str], list[dict[str, float]]]:
        """The first answer's tokens and their top log-probabilities, which single-pass needs."""
        if not result.tokens or not result.logprobs:
            raise JudgeError(
                f"{self.backend.name} returned no token log-probabilities; single-pass scoring needs them "
                "(llamacpp: it is enabled automatically; servers: they must support logprobs)"
            )
        return result.tokens[0], result.logprobs[0]

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
