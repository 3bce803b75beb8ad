"""What every method shares: a target-independent judgement, then a target-dependent choice."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from pluralign.attributes import Attribute
from pluralign.errors import InputError
from pluralign.probes import Probe
from pluralign.selection import Choice, Metric, select
from pluralign.targets import AlignmentTarget


class CallStats(BaseModel):
    """LLM work behind one judgement: requests, model calls made for them (re-asks included),
    requests answered by the cache, tokens, time."""

    requests: int = 0
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_seconds: float = 0.0

    def add(self, other: CallStats) -> None:
        self.requests += other.requests
        self.calls += other.calls
        self.cached += other.cached
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.llm_seconds += other.llm_seconds


class Judgement(BaseModel):
    """A method's output for one probe.

    Regression-style methods fill ``predictions`` (attribute values per response), which
    do not depend on the target; choice-style methods fill ``choice`` directly.
    """

    predictions: list[dict[str, float]] | None = None
    reasonings: list[dict[str, str]] | None = None
    choice: int | None = None
    choice_reasoning: str = ""
    samples: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    stats: CallStats = Field(default_factory=CallStats)


class Method(ABC):
    """A way of judging probes. Subclasses say whether their judgement needs the target."""

    name: str = "method"
    target_dependent: bool = False
    needs_labels: bool = False

    def config(self) -> dict[str, Any]:
        """Everything that changes the judgement (used for run identity and caching)."""
        return {"method": self.name}

    @abstractmethod
    def judge(
        self,
        probe: Probe,
        attributes: Sequence[Attribute],
        target: AlignmentTarget | None = None,
        seed: int = 0,
    ) -> Judgement: ...

    def choose(self, judgement: Judgement, target: AlignmentTarget, metric: Metric | str = Metric.euclidean) -> Choice:
        if judgement.choice is not None:
            return Choice(index=judgement.choice, distances=[], reasoning=judgement.choice_reasoning)
        if judgement.predictions is None:
            raise InputError(f"method {self.name} produced neither predictions nor a choice")
        reasons = None
        if judgement.reasonings is not None:
            reasons = [" ".join(r[a] for a in target.values if r.get(a)) for r in judgement.reasonings]
        return select(judgement.predictions, target, metric, reasonings=reasons)

    def close(self) -> None:  # noqa: B027 - optional hook, most methods hold nothing
        """Release models or connections."""
