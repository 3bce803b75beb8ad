"""Choice baselines: the LLM picks a letter, unaligned (best response) or prompt-aligned
(the target described in words in the system message)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pluralign import prompts
from pluralign.attributes import Attribute
from pluralign.judges.base import JudgeRequest
from pluralign.methods.base import Judgement
from pluralign.methods.spm import LLMMethod, shuffles, stats_of
from pluralign.probes import Probe
from pluralign.targets import AlignmentTarget


class ChoiceMethod(LLMMethod):
    """N shuffled samples, majority vote (ties to the earliest sample's pick)."""

    name = "unaligned"

    def __init__(self, backend: Any, aligned: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("samples", 1)
        super().__init__(backend, **kwargs)
        self.aligned = aligned
        self.name = "prompt-aligned" if aligned else "unaligned"
        self.target_dependent = aligned

    def judge(
        self, probe: Probe, attributes: Sequence[Attribute], target: AlignmentTarget | None = None, seed: int = 0
    ) -> Judgement:
        n = len(probe.responses)
        letters = prompts.letters_for(n)
        system = prompts.choice_system(target if self.aligned else None)
        schema = prompts.choice_schema(letters)
        orders = shuffles(n, self.samples, seed, "choice")
        batch = []
        for k, order in enumerate(orders):
            choices = {letters[j]: probe.responses[i] for j, i in enumerate(order)}
            messages = prompts.conversation(system, [], prompts.choice_user(probe.prompt, choices))
            batch.append(JudgeRequest(messages=messages, json_schema=schema, settings=self.settings(seed + k)))
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
