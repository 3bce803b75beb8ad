"""The steerable pluralistic model: few-shot comparative regression (Adams et al., 2025).

For each attribute the judge sees the question and *all* responses (lettered), N times with
the responses shuffled differently each time; a response's predicted value is the mean of
its scores / scale, and the first sample's reasoning is kept. Positions, never texts, map
letters back to responses, so duplicate responses keep their own indexes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction import prompts
from pluralign.prediction.examples import ExampleSelector, FewShotOptions
from pluralign.prediction.judges.base import Backend, JudgeRequest, JudgeResult
from pluralign.prediction.methods.base import Assessment
from pluralign.prediction.methods.llm import (
    Estimator,
    EstimatorOptions,
    JudgementParts,
    LLMMethod,
    ShuffleOptions,
    rotations,
    shuffles,
)
from pluralign.prediction.methods.logprobs import level_distributions
from pluralign.prediction.methods.registry import MethodSpec, Resources, register_method
from pluralign.support.options import cli

TOP_LOGPROBS = 20


def unshuffle(answer: dict[str, Any], order: Sequence[int], letters: Sequence[str]) -> dict[str, Any]:
    """Map one lettered answer back to original response positions (by position, never text)."""
    n = len(order)
    scores: list[float] = [0] * n
    reasons = [""] * n
    for j, i in enumerate(order):
        item = answer[letters[j]]
        if isinstance(item, dict):
            scores[i], reasons[i] = int(item["score"]), str(item["reasoning"])
        else:  # scores only (--no-reasoning)
            scores[i] = int(item)
    return {"order": list(order), "scores": scores, "reasonings": reasons}


def aggregate(per_sample: Sequence[dict[str, Any]], scale: int) -> tuple[list[float], list[str]]:
    """Mean score per response on [0, 1], and the first sample's reasoning."""
    n = len(per_sample[0]["scores"])
    means = [sum(s["scores"][i] for s in per_sample) / len(per_sample) / scale for i in range(n)]
    return means, list(per_sample[0]["reasonings"])


class ZeroShotOptions(EstimatorOptions, ShuffleOptions):
    """What ``spm-zeroshot`` reads."""

    default_samples = 5
    reasoning: bool = Field(
        default=True,
        description="Ask for a sentence of reasoning before each response's score (the paper); "
        "--no-reasoning asks for the scores only: far fewer tokens to write (docs/results.md).",
        json_schema_extra=cli("--no-reasoning", invert=True, group="generation"),
    )
    reasoning_chars: int = Field(
        default=prompts.REASONING_MAX,
        ge=40,
        le=prompts.REASONING_MAX,
        description="The longest reasoning the judge may write per response, in characters (held by the "
        "JSON schema's grammar): fewer are written sooner (the steering proxy asks for fewer).",
        json_schema_extra=cli(group="generation"),
    )


class SpmOptions(ZeroShotOptions, FewShotOptions):
    """What ``spm`` reads: comparative regression's options and the few-shot rule."""


class ComparativeRegression(LLMMethod):
    """``spm`` (few-shot, with an example selector) or ``spm-zeroshot`` (without)."""

    options: ZeroShotOptions

    def __init__(
        self,
        backend: Backend,
        options: ZeroShotOptions | None = None,
        examples: ExampleSelector | None = None,
        backend_estimator: Estimator = "sample",
    ) -> None:
        super().__init__(backend, options or ZeroShotOptions(), backend_estimator)
        self.examples = examples
        self.name = "spm" if examples is not None else "spm-zeroshot"

    def config(self) -> dict[str, Any]:
        passes = self.options.samples or "one per response order"
        chars = self.options.reasoning_chars
        return {
            **super().config(),
            "samples": passes if self.mode == "logprobs" else self.samples,
            "scoring": self.mode,
            "shuffle": self.options.shuffle,
            "examples": self.examples.config() if self.examples else None,
            **({} if self.options.reasoning else {"reasoning": False}),  # earlier runs' identity unchanged
            **({} if chars == prompts.REASONING_MAX else {"reasoning_chars": chars}),
        }

    def requests_for(self, probe: Probe, attribute: Attribute, seed: int) -> tuple[list[JudgeRequest], list[list[int]]]:
        """The N shuffled requests for one attribute (single-pass scoring: one greedy pass per
        rotation of the responses, by default as many as there are responses). Everything the
        samples share (system message, examples, question) comes before what the shuffle
        changes, so llama.cpp reuses that prefix from its KV cache."""
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        if self.mode == "logprobs" and self.options.shuffle:
            orders = rotations(n, self.options.samples or n, seed, attribute.name)
        else:
            orders = shuffles(n, self.samples, seed, attribute.name, self.options.shuffle)
        examples = self.examples.select(attribute, probe.question, probe.responses) if self.examples else []
        reasoning = self.options.reasoning
        system = self.prompts.comparative_system(attribute, self.scale, reasoning)
        chars = self.options.reasoning_chars
        schema = prompts.comparative_schema(letters, self.scale, self.allowed_scores(attribute), reasoning, chars)
        top = TOP_LOGPROBS if self.mode == "logprobs" else 0
        requests = []
        for k, order in enumerate(orders):
            choices = {letters[j]: probe.responses[i] for j, i in enumerate(order)}
            user = self.prompts.comparative_user(attribute, probe.question, choices, self.scale, reasoning)
            messages = prompts.conversation(system, [e.turn(reasoning) for e in examples], user)
            settings = self.generation(seed + k, items=n, top_logprobs=top, reasoning_chars=chars)
            requests.append(JudgeRequest(messages=messages, json_schema=schema, settings=settings))
        return requests, orders

    def assess(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Assessment:
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        batch: list[JudgeRequest] = []
        plan: list[tuple[Attribute, list[list[int]]]] = []
        for attribute in attributes:
            requests, orders = self.requests_for(probe, attribute, seed)
            batch.extend(requests)  # samples of one attribute stay adjacent: prefix reuse
            plan.append((attribute, orders))
        results = self.backend.generate(batch)
        out = JudgementParts(n)
        pos = 0
        for attribute, orders in plan:
            per_sample = []
            mixtures: list[dict[str, float]] = [{} for _ in range(n)]
            for order in orders:
                sample = unshuffle(results[pos].data, order, letters)
                if self.mode == "logprobs":
                    for i, dist in enumerate(self._apply_expected(sample, results[pos], attribute, order)):
                        for level, p in dist.items():  # the passes' distributions, averaged
                            mixtures[i][level] = mixtures[i].get(level, 0.0) + p / len(orders)
                per_sample.append(sample)
                pos += 1
            if self.mode == "logprobs":
                out.level_probs[attribute.name] = mixtures
            means, reasons = aggregate(per_sample, self.scale)
            out.set(attribute.name, means, reasons)
            out.samples[attribute.name] = per_sample
            out.draws[attribute.name] = [[s / self.scale for s in sample["scores"]] for sample in per_sample]
        return out.assessment(results)

    def _apply_expected(
        self, sample: dict[str, Any], result: JudgeResult, attribute: Attribute, order: Sequence[int]
    ) -> list[dict[str, float]]:
        """Replace the sampled integers by expected values from the token probabilities;
        returns each response's probability per level (on [0, 1], as strings)."""
        tokens, logprobs = self.first_logprobs(result)
        allowed = self.allowed_scores(attribute) or []
        dists = level_distributions(tokens, logprobs, len(order), allowed, scores_only=not self.options.reasoning)
        out: list[dict[str, float]] = [{} for _ in order]
        if dists is None:  # the answer hides its scores: keep the generated value, certain
            for i in range(len(order)):
                out[i] = {f"{sample['scores'][i] / self.scale:g}": 1.0}
            return out
        for j, i in enumerate(order):
            sample["scores"][i] = sum(level * p for level, p in dists[j].items())
            out[i] = {f"{level / self.scale:g}": p for level, p in dists[j].items()}
        sample["expected"] = True
        return out


def _build(options: SpmOptions, res: Resources) -> ComparativeRegression:
    selector = ExampleSelector(
        res.train_probes(options),
        index=options.similarity,
        rule=options.rule_for(res.uses_builtin_bank(options)),
        max_examples=options.n_examples,
        max_chars=options.example_max_chars,
        scale=options.scale,
        prompt_set=prompts.PromptSet(options.prompts),
    )
    return ComparativeRegression(res.judge(), options, examples=selector, backend_estimator=res.default_estimator)


register_method(
    MethodSpec(
        name="spm",
        summary="few-shot comparative regression (the paper's model)",
        build=_build,
        options=SpmOptions,
        needs_llm=True,
    )
)
register_method(
    MethodSpec(
        name="spm-zeroshot",
        summary="comparative regression without examples",
        build=lambda o, r: ComparativeRegression(r.judge(), o, backend_estimator=r.default_estimator),
        options=ZeroShotOptions,
        needs_llm=True,
    )
)
