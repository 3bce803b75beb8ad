"""A probe: one question with 2+ candidate responses, optionally labelled.

The one place that says what a well-formed probe is ("at least 2 responses", texts are
strings, labels on [0, 1]); every entry point (files, CLI, API, service) goes through it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from pluralign.support.errors import InputError, validation_message
from pluralign.support.files import read_json, write_json_atomic
from pluralign.support.strict import Number, check_text, not_blank, validate_each

MIN_RESPONSES = 2
BOTH_NAMES = "give question or prompt (the same field), not both"
"""An item holding both: one would be judged and the other passed over in silence."""


def _responses_are_a_list(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError(f"must be a list of strings, not {type(value).__name__}")
    if len(value) < MIN_RESPONSES:
        raise ValueError(f"need at least {MIN_RESPONSES} responses to choose between, got {len(value)}")
    return value


Text = Annotated[StrictStr, AfterValidator(check_text)]
"""A string that can be sent to a model (no lone surrogates)."""
Question = Annotated[Text, not_blank("is blank: the judge needs the question the responses answer")]
"""What the responses answer: text with something in it (an empty or all-space question gives the
judge nothing to score against), at every door: files, CLI, API, service, rerank's query."""
_QUESTION: TypeAdapter[str] = TypeAdapter(Question)


def check_question(value: Any) -> str:
    """A question alone, checked as a probe's is: before candidates are generated for it."""
    try:
        return _QUESTION.validate_python(value)
    except ValidationError as exc:
        raise InputError(validation_message(exc, prefix="question: ")) from None


Responses = Annotated[list[StrictStr], BeforeValidator(_responses_are_a_list), AfterValidator(check_text)]
"""Two or more candidate responses, each text: what every entry point accepts."""


class Probe(BaseModel):
    """Question, responses and, for benchmarks, per-response labels and reasonings.

    The question is written ``prompt`` in files (the paper's data format) and read as either."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True)

    question: Question = Field(validation_alias=AliasChoices("question", "prompt"), serialization_alias="prompt")
    responses: Responses
    labels: list[dict[str, Number]] | None = None
    reasonings: list[dict[str, str]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "question" in data and "prompt" in data:
            raise ValueError(BOTH_NAMES)
        return data

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

    @property
    def prompt(self) -> str:
        """0.2's name of :attr:`question` (until 0.4)."""
        warnings.warn("Probe.prompt is now Probe.question", DeprecationWarning, stacklevel=2)
        return self.question

    def label_vector(self, index: int, attributes: Sequence[str]) -> list[float]:
        """True values of one response; a missing label is an error, never a default."""
        if self.labels is None:
            raise InputError("probe has no labels")
        label = self.labels[index]
        missing = [a for a in attributes if a not in label]
        if missing:
            raise InputError(f"response {index} has no label for {', '.join(missing)}")
        return [label[a] for a in attributes]


def make_probe(question: Any, responses: Any, where: str = "") -> Probe:
    """A probe from untrusted input, or an InputError naming the field."""
    try:
        return Probe(question=question, responses=responses)
    except ValidationError as exc:
        raise InputError(validation_message(exc, where)) from None


def load_probes(path: str | Path) -> list[Probe]:
    """Read a JSON list of probes (a benchmark's ``train.json`` or ``eval.json``, an example
    bank), naming the item and the problem on failure."""
    path = Path(path)
    raw = read_json(path, "benchmark file")
    if not isinstance(raw, list):
        raise InputError(f"{path}: expected a JSON list of items")
    return validate_each(Probe, raw, lambda i: f"{path}: item {i}: ")


def save_probes(path: str | Path, probes: list[Probe]) -> None:
    write_json_atomic(path, [p.model_dump(exclude_none=True) for p in probes], indent=4)
