"""Shared plumbing of the methods that ask an LLM judge: settings, shuffles, call accounting."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from pluralign.choice.attributes import Attribute
from pluralign.prediction.judges.base import AnswerOptions, Backend, GenerationSettings, JudgeResult
from pluralign.prediction.methods.base import Assessment, CallStats, Method
from pluralign.prediction.prompts import REASONING_MAX, SCALE, PromptOptions, PromptSet
from pluralign.support.errors import JudgeError
from pluralign.support.options import Options, cli

DEFAULT_TEMPERATURE = 0.7
Estimator = Literal["sample", "logprobs"]


class LLMOptions(PromptOptions, AnswerOptions):
    """What every method that asks the judge reads."""

    default_samples: ClassVar[int] = 1
    """The method's number of samples when ``samples`` is not given."""

    samples: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Samples per attribute (default: the method's, see `pluralign methods`; with --estimator "
        "logprobs, greedy passes, one per response order).",
        json_schema_extra=cli(group="generation"),
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description=f"Sampling temperature (default {DEFAULT_TEMPERATURE}; 0 with --estimator logprobs).",
        json_schema_extra=cli(group="generation"),
    )
    max_tokens: int = Field(
        default=1024, ge=16, le=32_768, description="Most tokens per answer.", json_schema_extra=cli(group="generation")
    )

    def mode(self, backend_default: Estimator) -> Estimator:
        """How predictions are estimated from the judge's scores; only sampling here."""
        return "sample"


class ShuffleOptions(Options):
    shuffle: bool = Field(
        default=True,
        description="Shuffle the responses in every sample.",
        json_schema_extra=cli("--no-shuffle", invert=True, group="generation"),
    )


class EstimatorOptions(LLMOptions):
    """For methods that turn the judge's scores into attribute values."""

    estimator: Literal["auto", "sample", "logprobs"] = Field(
        default="auto",
        description="sample: the mean of N sampled answers (the paper); logprobs: greedy answers, the expected "
        "score under the judge's token probabilities, one pass per order of the responses (each response at each "
        "letter once; --samples sets the number of passes); auto: logprobs on the llamacpp backend when neither "
        "--samples nor --temperature is given (see docs/results.md), else sample.",
        json_schema_extra=cli(group="generation", old=("--scoring",)),
    )
    scale: int = Field(
        default=SCALE,
        ge=2,
        le=1000,
        description="Scores are asked on 0..scale and divided by it (the paper: 100).",
        json_schema_extra=cli(group="generation"),
    )

    @model_validator(mode="after")
    def _compatible(self) -> EstimatorOptions:
        if self.estimator == "logprobs" and self.temperature not in (None, 0.0):
            raise ValueError(
                f"--estimator logprobs decodes greedily; drop --temperature {self.temperature} "
                "or use --estimator sample"
            )
        return self

    def mode(self, backend_default: Estimator) -> Estimator:
        """``auto``: the backend's default when neither samples nor temperature is given."""
        if self.estimator != "auto":
            return self.estimator
        return backend_default if self.samples is None and self.temperature is None else "sample"


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
class JudgementParts:
    """What a scoring method gathers for one probe, attribute by attribute, before it
    becomes a :class:`Assessment`."""

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

    def assessment(self, results: Sequence[JudgeResult]) -> Assessment:
        complete = {a: v for a, v in self.level_probs.items() if len(v) == self.n}
        return Assessment(
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

    A per-request change of options makes a copy (:meth:`with_options`) that shares the
    loaded judge. ``backend_estimator`` is what ``--estimator auto`` means on its backend.
    """

    def __init__(self, backend: Backend, options: LLMOptions, backend_estimator: Estimator = "sample") -> None:
        self.backend = backend
        self.options = options
        self.backend_estimator = backend_estimator
        self.prompts = PromptSet(options.prompts)

    @property
    def mode(self) -> Estimator:
        return self.options.mode(self.backend_estimator)

    @property
    def samples(self) -> int:
        return self.options.samples if self.options.samples is not None else self.options.default_samples

    @property
    def scale(self) -> int:
        return int(getattr(self.options, "scale", SCALE))

    @property
    def temperature(self) -> float:
        if self.options.temperature is not None:
            return self.options.temperature
        return 0.0 if self.mode == "logprobs" else DEFAULT_TEMPERATURE

    def allowed_scores(self, attribute: Attribute) -> list[int] | None:
        """Single-pass scoring restricts scores to the attribute's label levels (on the scale),
        so the judge's probabilities fall on values the labels can take; sampling does not."""
        if self.mode != "logprobs":
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

    def quicker(self, passes: int | None, reasoning: bool, reasoning_chars: int | None = None) -> dict[str, Any]:
        """Option overrides that judge sooner, for a person waiting on the answer: ``passes``
        passes per attribute in the estimator it uses now (naming samples alone would switch
        ``auto`` to sampling), no reasonings, or shorter ones, where the method asks for them."""
        out: dict[str, Any] = {}
        if passes is not None:
            out["samples"] = passes
            if self.mode == "logprobs":
                out["estimator"] = "logprobs"
        fields = type(self.options).model_fields
        if not reasoning and "reasoning" in fields:
            out["reasoning"] = False
        if reasoning and reasoning_chars is not None and "reasoning_chars" in fields:
            own = int(getattr(self.options, "reasoning_chars", reasoning_chars))
            out["reasoning_chars"] = min(reasoning_chars, own)
        return out

    async def ready(self) -> str | None:
        return await self.backend.ready()

    def items_at_once(self) -> int:
        return max(1, self.backend.concurrent_requests)

    def with_options(self, options: LLMOptions) -> LLMMethod:
        """A shallow copy with other options: same judge, same example index."""
        clone = copy.copy(self)
        clone.options = options
        if options.prompts != self.options.prompts:
            clone.prompts = PromptSet(options.prompts)
        return clone

    def generation(
        self, seed: int, n: int = 1, items: int = 1, top_logprobs: int = 0, reasoning_chars: int = REASONING_MAX
    ) -> GenerationSettings:
        """``items`` reasonings of up to ``reasoning_chars`` characters must fit, or a rambling judge
        is cut off mid-string and every re-ask fails the same way."""
        budget = max(self.options.max_tokens, items * (reasoning_chars + 40) + 32)
        return GenerationSettings(
            temperature=self.temperature,
            max_tokens=budget,
            seed=seed,
            n=n,
            top_logprobs=top_logprobs,
            max_attempts=self.options.max_attempts,
        )

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "backend": self.backend.name,
            "model": self.backend.model,
            "samples": self.samples,
            "temperature": self.temperature,
            "max_tokens": self.options.max_tokens,
            "scale": self.scale,
            **self.prompts.config(),
        }

    def close(self) -> None:
        self.backend.close()
