"""Choice baselines: the LLM picks a letter, unaligned (best response) or prompt-aligned
(the target described in words in the system message, with the paper's few-shot examples:
the 5 most similar labelled items, each answered for the target)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pluralign.choice.attributes import Attribute
from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction import prompts
from pluralign.prediction.examples import ExampleSelectionOptions, ExampleSelector
from pluralign.prediction.judges.base import Backend, JudgeRequest
from pluralign.prediction.methods.base import Assessment
from pluralign.prediction.methods.llm import LLMMethod, LLMOptions, ShuffleOptions, shuffles, stats_of
from pluralign.prediction.methods.registry import MethodSpec, Resources, register_method

PAPER_CHOICE_EXAMPLES = 5


class UnalignedOptions(LLMOptions, ShuffleOptions):
    """What ``unaligned`` reads."""


class PromptAlignedOptions(UnalignedOptions, ExampleSelectionOptions):
    """What ``prompt-aligned`` reads: the examples are the most similar (--n-examples 0: none)."""


class ChoiceMethod(LLMMethod):
    """N shuffled samples, majority vote (ties to the earliest sample's pick)."""

    options: UnalignedOptions

    def __init__(
        self,
        backend: Backend,
        options: UnalignedOptions | None = None,
        aligned: bool = False,
        examples: ExampleSelector | None = None,
    ) -> None:
        super().__init__(backend, options or UnalignedOptions())
        self.aligned = aligned
        self.examples = examples
        self.name = "prompt-aligned" if aligned else "unaligned"
        self.target_dependent = aligned

    @property
    def n_examples(self) -> int:
        if self.examples is None:
            return 0
        wanted = getattr(self.options, "n_examples", None)
        return wanted if wanted is not None else PAPER_CHOICE_EXAMPLES

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "shuffle": self.options.shuffle,
            "examples": {**self.examples.config(), "count": self.n_examples} if self.examples else None,
        }

    def assess(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Assessment:
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        system = self.prompts.choice_system(target if self.aligned else None)
        schema = prompts.choice_schema(letters)
        examples: list[tuple[str, str]] = []
        if self.examples is not None and target is not None and self.n_examples > 0:
            examples = self.examples.select_choices(target, probe.question, probe.responses, self.n_examples)
        orders = shuffles(n, self.samples, seed, "choice", self.options.shuffle)
        batch = []
        for k, order in enumerate(orders):
            choices = {letters[j]: probe.responses[i] for j, i in enumerate(order)}
            messages = prompts.conversation(system, examples, self.prompts.choice_user(probe.question, choices))
            batch.append(JudgeRequest(messages=messages, json_schema=schema, settings=self.generation(seed + k)))
        results = self.backend.generate(batch)
        picks = []
        for order, result in zip(orders, results, strict=True):
            picks.append((order[letters.index(result.data["choice"])], str(result.data["reasoning"])))
        votes = Counter(i for i, _ in picks)
        best = max(votes.values())
        winner = next(i for i, _ in picks if votes[i] == best)
        reasoning = next(r for i, r in picks if i == winner)
        return Assessment(
            choice=winner,
            choice_reasoning=reasoning,
            samples={
                "choice": [{"order": o, "picked": i, "reasoning": r} for o, (i, r) in zip(orders, picks, strict=True)]
            },
            stats=stats_of(results),
        )


def _prompt_aligned(options: PromptAlignedOptions, res: Resources) -> ChoiceMethod:
    selector = None
    if options.n_examples != 0:
        selector = ExampleSelector(
            res.train_probes(options),
            index=options.similarity,
            rule="top",
            max_chars=options.example_max_chars,
            prompt_set=prompts.PromptSet(options.prompts),
        )
    return ChoiceMethod(res.judge(), options, aligned=True, examples=selector)


register_method(
    MethodSpec(
        name="unaligned",
        summary="the LLM picks the best response, blind to the target",
        build=lambda o, r: ChoiceMethod(r.judge(), o, aligned=False),
        options=UnalignedOptions,
        needs_llm=True,
    )
)
register_method(
    MethodSpec(
        name="prompt-aligned",
        summary="the target described in the system prompt, 5 few-shot examples (--n-examples 0: none)",
        build=_prompt_aligned,
        options=PromptAlignedOptions,
        needs_llm=True,
    )
)
