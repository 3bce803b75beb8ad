"""The steerable pluralistic model: few-shot comparative regression (Adams et al., 2025),
and its per-response ablation.

For each attribute the judge sees the question and *all* responses (lettered), N times with
the responses shuffled differently each time; a response's predicted value is the mean of
its scores / 100, and the first sample's reasoning is kept. Positions, never texts, map
letters back to responses, so duplicate responses keep their own indexes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pluralign import prompts
from pluralign.attributes import Attribute
from pluralign.errors import JudgeError
from pluralign.icl import ExampleSelector
from pluralign.judges.base import Backend, GenerationSettings, JudgeRequest, JudgeResult
from pluralign.methods.base import CallStats, Judgement, Method
from pluralign.probes import Probe
from pluralign.targets import AlignmentTarget


def shuffles(n_responses: int, n_samples: int, seed: int, attribute: str, shuffle: bool = True) -> list[list[int]]:
    """One order per sample: order[j] is the original index shown at letter j."""
    rng = random.Random(f"{seed}:{attribute}")
    base = list(range(n_responses))
    return [rng.sample(base, n_responses) if shuffle else list(base) for _ in range(n_samples)]


def unshuffle(answer: dict[str, Any], order: Sequence[int], letters: Sequence[str]) -> dict[str, Any]:
    """Map one lettered answer back to original response positions (by position, never text)."""
    n = len(order)
    scores: list[float] = [0] * n
    reasons = [""] * n
    for j, i in enumerate(order):
        scores[i] = int(answer[letters[j]]["score"])
        reasons[i] = str(answer[letters[j]]["reasoning"])
    return {"order": list(order), "scores": scores, "reasonings": reasons}


def aggregate(per_sample: Sequence[dict[str, Any]], scale: int) -> tuple[list[float], list[str]]:
    """Mean score per response on [0, 1], and the first sample's reasoning."""
    n = len(per_sample[0]["scores"])
    means = [sum(s["scores"][i] for s in per_sample) / len(per_sample) / scale for i in range(n)]
    return means, list(per_sample[0]["reasonings"])


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
    """Shared plumbing for methods that call a judge backend."""

    def __init__(
        self,
        backend: Backend,
        samples: int = 5,
        temperature: float = 0.7,
        max_tokens: int = 1024,
        scale: int = prompts.SCALE,
    ) -> None:
        self.backend = backend
        self.samples = samples
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.scale = scale

    def settings(self, seed: int, n: int = 1, items: int = 1) -> GenerationSettings:
        """``items`` reasonings of up to 512 characters must fit, or a rambling judge is cut off
        mid-string and every re-ask fails the same way."""
        budget = max(self.max_tokens, items * (prompts.REASONING_MAX + 40) + 32)
        return GenerationSettings(temperature=self.temperature, max_tokens=budget, seed=seed, n=n)

    def config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "backend": self.backend.name,
            "model": self.backend.model,
            "samples": self.samples,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "scale": self.scale,
        }

    def close(self) -> None:
        self.backend.close()


class ComparativeRegression(LLMMethod):
    """``spm`` (few-shot, with an example selector) or ``spm-zeroshot`` (without)."""

    name = "spm"

    def __init__(
        self,
        backend: Backend,
        examples: ExampleSelector | None = None,
        shuffle: bool = True,
        scoring: str = "sample",
        **kwargs: Any,
    ) -> None:
        super().__init__(backend, **kwargs)
        self.examples = examples
        self.shuffle = shuffle
        self.scoring = scoring
        if scoring == "logprobs":
            self.samples = 1
            self.temperature = 0.0
        self.name = "spm" if examples is not None else "spm-zeroshot"

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "scoring": self.scoring,
            "shuffle": self.shuffle,
            "examples": self.examples.config() if self.examples else None,
        }

    def requests_for(self, probe: Probe, attribute: Attribute, seed: int) -> tuple[list[JudgeRequest], list[list[int]]]:
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        orders = shuffles(n, self.samples, seed, attribute.name, self.shuffle)
        examples = self.examples.select(attribute, probe.prompt, probe.responses) if self.examples else []
        system = prompts.comparative_system(attribute, self.scale)
        allowed = None
        settings_extra: dict[str, Any] = {}
        if self.scoring == "logprobs":
            allowed = [round(v * self.scale) for v in attribute.level_values()]
            settings_extra = {"top_logprobs": 20}
        schema = prompts.comparative_schema(letters, self.scale, allowed)
        requests = []
        for k, order in enumerate(orders):
            choices = {letters[j]: probe.responses[i] for j, i in enumerate(order)}
            user = prompts.comparative_user(attribute, probe.prompt, choices, self.scale)
            messages = prompts.conversation(system, [(e.user, e.assistant) for e in examples], user)
            settings = self.settings(seed + k, items=n).model_copy(update=settings_extra)
            requests.append(JudgeRequest(messages=messages, json_schema=schema, settings=settings))
        return requests, orders

    def judge(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Judgement:
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        batch: list[JudgeRequest] = []
        plan: list[tuple[Attribute, list[list[int]]]] = []
        for attribute in attributes:
            requests, orders = self.requests_for(probe, attribute, seed)
            batch.extend(requests)  # samples of one attribute stay adjacent: prefix reuse
            plan.append((attribute, orders))
        results = self.backend.generate(batch)
        predictions: list[dict[str, float]] = [{} for _ in range(n)]
        reasonings: list[dict[str, str]] = [{} for _ in range(n)]
        samples: dict[str, list[dict[str, Any]]] = {}
        pos = 0
        for attribute, orders in plan:
            per_sample = []
            for order in orders:
                sample = unshuffle(results[pos].data, order, letters)
                if self.scoring == "logprobs":
                    self._apply_expected(sample, results[pos], attribute, order)
                per_sample.append(sample)
                pos += 1
            means, reasons = aggregate(per_sample, self.scale)
            for i in range(n):
                predictions[i][attribute.name] = means[i]
                reasonings[i][attribute.name] = reasons[i]
            samples[attribute.name] = per_sample
        return Judgement(predictions=predictions, reasonings=reasonings, samples=samples, stats=stats_of(results))

    def _apply_expected(
        self, sample: dict[str, Any], result: JudgeResult, attribute: Attribute, order: Sequence[int]
    ) -> None:
        """Replace the sampled integers by expected values from the token probabilities."""
        from pluralign.logprob_scores import expected_scores

        if not result.tokens or not result.logprobs:
            raise JudgeError(
                f"{self.backend.name} returned no token log-probabilities; single-pass scoring needs them "
                "(llamacpp: it is enabled automatically; servers: they must support logprobs)"
            )
        allowed = [round(v * self.scale) for v in attribute.level_values()]
        expected = expected_scores(result.tokens[0], result.logprobs[0], len(order), allowed)
        if expected is None:
            return
        for j, i in enumerate(order):
            sample["scores"][i] = expected[j]
        sample["expected"] = True


class PerResponseRegression(LLMMethod):
    """The ablation: each response judged alone (no comparison), N samples averaged."""

    name = "regression"

    def judge(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Judgement:
        n = len(probe.responses)
        schema = prompts.regression_schema(self.scale)
        batch = []
        for attribute in attributes:
            system = prompts.regression_system(attribute, self.scale)
            for response in probe.responses:
                user = prompts.regression_user(attribute, probe.prompt, response, self.scale)
                messages = prompts.conversation(system, [], user)
                batch.append(
                    JudgeRequest(messages=messages, json_schema=schema, settings=self.settings(seed, n=self.samples))
                )
        results = self.backend.generate(batch)
        predictions: list[dict[str, float]] = [{} for _ in range(n)]
        reasonings: list[dict[str, str]] = [{} for _ in range(n)]
        samples: dict[str, list[dict[str, Any]]] = {}
        pos = 0
        for attribute in attributes:
            rows = []
            for i in range(n):
                outputs = results[pos].outputs
                pos += 1
                scores = [int(o["score"]) for o in outputs]
                predictions[i][attribute.name] = sum(scores) / len(scores) / self.scale
                reasonings[i][attribute.name] = str(outputs[0]["reasoning"])
                rows.append({"response": i, "scores": scores})
            samples[attribute.name] = rows
        return Judgement(predictions=predictions, reasonings=reasonings, samples=samples, stats=stats_of(results))
