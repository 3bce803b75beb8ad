"""A probe: one question with 2+ candidate responses, optionally labelled."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Probe(BaseModel):
    """Question, responses and, for benchmarks, per-response labels and reasonings."""

    model_config = ConfigDict(frozen=True)

    prompt: str
    responses: list[str] = Field(min_length=2)
    labels: list[dict[str, float]] | None = None
    reasonings: list[dict[str, str]] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Probe:
        n = len(self.responses)
        if self.labels is not None:
            if len(self.labels) != n:
                raise ValueError(f"{len(self.labels)} label sets for {n} responses")
            for i, label in enumerate(self.labels):
                for attr, value in label.items():
                    if not 0.0 <= value <= 1.0:
                        raise ValueError(f"label {attr}={value} of response {i} is outside [0, 1]")
        if self.reasonings is not None and len(self.reasonings) != n:
            raise ValueError(f"{len(self.reasonings)} reasoning sets for {n} responses")
        return self

    def label_vector(self, index: int, attributes: list[str]) -> list[float]:
        """True values of one response; a missing label is an error, never a default."""
        if self.labels is None:
            raise ValueError("probe has no labels")
        label = self.labels[index]
        missing = [a for a in attributes if a not in label]
        if missing:
            raise KeyError(f"response {index} has no label for {', '.join(missing)}")
        return [label[a] for a in attributes]
