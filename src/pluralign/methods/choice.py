"""Choice baselines: the LLM picks a letter, unaligned (best response) or prompt-aligned
(the target described in words in the system message, with the paper's few-shot examples:
the 5 most similar labelled items, each answered for the target)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pluralign import prompts
from pluralign.attributes import Attribute
from pluralign.icl import ExampleSelector
from pluralign.judges.base import Backend, JudgeRequest
from pluralign.methods.base import Judgement
from pluralign.methods.llm import LLMMethod, shuffles, stats_of
from pluralign.methods.registry import MethodSpec, Resources, register_method
from pluralign.probes import Probe
from pluralign.settings import Settings
from pluralign.targets import AlignmentTarget

PAPER_CHOICE_EXAMPLES = 5


class ChoiceMethod(LLMMethod):
    """N shuffled samples, majority vote (ties to the earliest sample's pick)."""

    default_samples = 1

    def __init__(
        self, backend: Backend, settings: Settings, aligned: bool = False, examples: ExampleSelector | None = None
    ) -> None:
        super().__init__(backend, settings)
        self.aligned = aligned
        self.examples = examples
        self.name = "prompt-aligned" if aligned else "unaligned"
        self.target_dependent = aligned

    @property
    def n_examples(self) -> int:
        if self.examples is None:
            return 0
        return self.settings.n_examples if self.settings.n_examples is not None else PAPER_CHOICE_EXAMPLES

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "shuffle": self.settings.shuffle,
            "examples": {**self.examples.config(), "count": self.n_examples} if self.examples else None,
        }

    def judge(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Judgement:
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        system = self.prompts.choice_system(target if self.aligned else None)
        schema = prompts.choice_schema(letters)
        examples: list[tuple[str, str]] = []
        if self.examples is not None and target is not None and self.n_examples > 0:
            examples = self.examples.select_choices(target, probe.prompt, probe.responses, self.n_examples)
        orders = shuffles(n, self.samples, seed, "choice", self.settings.shuffle)
        batch = []
        for k, order in enumerate(orders):
            choices = {letters[j]: probe.responses[i] for j, i in enumerate(order)}
            messages = prompts.conversation(system, examples, self.prompts.choice_user(probe.prompt, choices))
            batch.append(JudgeRequest(messages=messages, json_schema=schema, settings=self.generation(seed + k)))
        results = self.backend.generate(batch)
        picks = []
        for order, result in zip(orders, results, strict=True):
            picks.append((order[letters.index(result.data["choice"])], str(result.data["reasoning"])))
        votes = Counter(i for i, _ in picks)
        best = max(votes.values())
        winner = next(i for i, _ in picks if votes[i] == best)
        reasoning = next(r for i, r in picks if i == winner)
        return Judgement(
            choice=winner,
            choice_reasoning=reasoning,
            samples={
                "choice": [{"order": o, "picked": i, "reasoning": r} for o, (i, r) in zip(orders, picks, strict=True)]
            },
            stats=stats_of(results),
        )


def _prompt_aligned(settings: Settings, res: Resources) -> ChoiceMethod:
    selector = None
    if settings.n_examples != 0:
        selector = ExampleSelector(
            res.train_probes(),
            index=settings.similarity,
            rule="top",
            max_chars=settings.example_max_chars,
            prompt_set=prompts.PromptSet(settings.prompts),
        )
    return ChoiceMethod(res.judge(), settings, aligned=True, examples=selector)


register_method(
    MethodSpec(
        name="unaligned",
        summary="the LLM picks the best response, blind to the target",
        build=lambda s, r: ChoiceMethod(r.judge(), s, aligned=False),
        needs_llm=True,
        default_samples=1,
        options=("backend", "model", "samples", "temperature", "shuffle", "prompts"),
    )
)
register_method(
    MethodSpec(
        name="prompt-aligned",
        summary="the target described in the system prompt, 5 few-shot examples (--n-examples 0: none)",
        build=_prompt_aligned,
        needs_llm=True,
        target_dependent=True,
        default_samples=1,
        options=(
            "backend",
            "model",
            "samples",
            "temperature",
            "shuffle",
            "prompts",
            "examples",
            "similarity",
            "n_examples",
            "example_max_chars",
        ),
    )
)
