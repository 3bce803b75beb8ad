"""Every prompt and JSON schema pluralign sends, in one place.

Templates are Jinja2 files (``templates/``, written for pluralign); ``--prompts DIR``
replaces any of them by a file of the same name, so the paper's (or anyone's) wording can
be used without editing the package. What each template receives:

========================  =====================================================================
template                  variables
========================  =====================================================================
comparative_system.j2     ``attribute`` (``.name``, ``.description``, ``.levels``,
                          ``.level_values()``), ``scale``
comparative_user.j2       ``attribute``, ``scale``, ``question`` (str), ``choices`` (letter -> text)
regression_system.j2      ``attribute``, ``scale``
regression_user.j2        ``attribute``, ``scale``, ``question``, ``response``
choice_system.j2          ``criteria`` (list of phrases such as "Strongly demonstrates care";
                          empty for the unaligned baseline), ``target`` (attribute -> value or None)
choice_user.j2            ``question``, ``choices``
reasoning_system.j2       ``attribute``
reasoning_user.j2         ``attribute``, ``question``, ``response``, ``value``, ``level`` (a phrase)
========================  =====================================================================

Text that comes from users or models goes through the ``data`` filter, which writes it as a
JSON string: whatever it contains ("Response B:", "ignore previous instructions"), it stays
inside its quotes and cannot forge the prompt's structure. A custom template that inserts
``{{ question }}`` raw gets the raw text (as the paper's prompts did).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from pydantic import Field

from pluralign.choice.attributes import Attribute
from pluralign.choice.targets import AlignmentTarget
from pluralign.prediction.judges.base import ChatMessage
from pluralign.support.errors import InputError
from pluralign.support.files import read_text
from pluralign.support.options import Options, cli

SCALE = 100
"""Scores are asked on 0..SCALE and divided by it (the paper: 100)."""


class PromptOptions(Options):
    """Which wording the judge is asked in."""

    prompts: Path | None = Field(
        default=None,
        description="Folder of prompt templates that replace pluralign's (same file names).",
        json_schema_extra=cli(group="generation"),
    )


LETTERS = string.ascii_uppercase
REASONING_MAX = 512
TEMPLATE_NAMES = (
    "comparative_system.j2",
    "comparative_user.j2",
    "regression_system.j2",
    "regression_user.j2",
    "choice_system.j2",
    "choice_user.j2",
    "reasoning_system.j2",
    "reasoning_user.j2",
)


def data_string(value: Any) -> str:
    """User- or model-supplied text as a JSON string literal (the ``data`` filter)."""
    return json.dumps(str(value), ensure_ascii=False)


def letters_for(n: int) -> list[str]:
    if n > len(LETTERS):
        raise InputError(f"at most {len(LETTERS)} responses can be compared at once, got {n}")
    return list(LETTERS[:n])


def lettered(responses: Sequence[str]) -> dict[str, str]:
    return dict(zip(letters_for(len(responses)), responses, strict=False))


def level_phrase(attribute: str, value: float) -> str:
    """The paper's seven verbal levels (0.75 reads as 'demonstrates', 0.25 as 'a lack of')."""
    if value >= 0.995:
        return f"Strongly demonstrates {attribute}"
    if value > 0.7:
        return f"Demonstrates {attribute}"
    if value > 0.55:
        return f"Somewhat demonstrates {attribute}"
    if value >= 0.45:
        return f"Is neutral with respect to {attribute}"
    if value >= 0.3:
        return f"Somewhat demonstrates a lack of {attribute}"
    if value > 0.005:
        return f"Demonstrates a lack of {attribute}"
    return f"Strongly demonstrates a lack of {attribute}"


def example_reasoning(attribute: str, value: float) -> str:
    """A stand-in reasoning for labelled examples that come without one."""
    phrase = level_phrase(attribute, value)
    return "The response " + phrase[0].lower() + phrase[1:] + "."


# ---- schemas ---------------------------------------------------------------------------


def _scored_item(
    scale: int, allowed: Sequence[int] | None = None, reasoning: bool = True, reasoning_max: int = REASONING_MAX
) -> dict[str, Any]:
    # An enum, not minimum/maximum: llama.cpp's grammar converter ignores integer bounds.
    values = list(allowed) if allowed is not None else list(range(scale + 1))
    score = {"type": "integer", "enum": values}
    if not reasoning:  # the score alone: the judge writes a few tokens per response instead of a sentence
        return score
    return {
        "type": "object",
        "properties": {"reasoning": {"type": "string", "minLength": 1, "maxLength": reasoning_max}, "score": score},
        "required": ["reasoning", "score"],
    }


def comparative_schema(
    letters: Sequence[str],
    scale: int = SCALE,
    allowed: Sequence[int] | None = None,
    reasoning: bool = True,
    reasoning_max: int = REASONING_MAX,
) -> dict[str, Any]:
    """``reasoning_max`` bounds each reasoning in the grammar itself: a small judge otherwise
    fills every one to the limit with repetitions, and each character is decoding time."""
    item = _scored_item(scale, allowed, reasoning, reasoning_max)
    return {"type": "object", "properties": {k: item for k in letters}, "required": list(letters)}


def regression_schema(scale: int = SCALE, allowed: Sequence[int] | None = None) -> dict[str, Any]:
    return _scored_item(scale, allowed)


def choice_schema(letters: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "minLength": 1, "maxLength": REASONING_MAX},
            "choice": {"type": "string", "enum": list(letters)},
        },
        "required": ["reasoning", "choice"],
    }


def reasoning_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"reasoning": {"type": "string", "minLength": 1, "maxLength": REASONING_MAX}},
        "required": ["reasoning"],
    }


# ---- messages --------------------------------------------------------------------------


def conversation(system: str, examples: Sequence[tuple[str, str]], user: str) -> list[ChatMessage]:
    """System message, then example user/assistant turns, then the query."""
    messages = [ChatMessage(role="system", content=system)]
    for question, answer in examples:
        messages.append(ChatMessage(role="user", content=question))
        messages.append(ChatMessage(role="assistant", content=answer))
    messages.append(ChatMessage(role="user", content=user))
    return messages


def answer_json(answer: Mapping[str, Any]) -> str:
    return json.dumps(answer, ensure_ascii=False)


class PromptSet:
    """The templates of one run: pluralign's, with any file in ``directory`` taking precedence."""

    def __init__(self, directory: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        self._files: dict[str, str] = {}
        if directory is not None:
            if not Path(directory).is_dir():
                raise InputError(f"--prompts {directory} is not a folder")
            unknown = sorted(p.name for p in Path(directory).glob("*.j2") if p.name not in TEMPLATE_NAMES)
            if unknown:
                raise InputError(
                    f"--prompts {directory}: {', '.join(unknown)} is not a pluralign template "
                    f"(known: {', '.join(TEMPLATE_NAMES)})"
                )
            # read once, through the file opener (a pipe or a device named *.j2 is refused, not
            # waited on): what renders is what the run's identity records
            self._files = {p.name: read_text(p, "prompt template") for p in sorted(Path(directory).glob("*.j2"))}
            loaders.append(jinja2.DictLoader(self._files))
        loaders.append(jinja2.PackageLoader("pluralign", "prediction/prompts/templates"))
        self.directory = directory
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            undefined=jinja2.StrictUndefined,
            autoescape=False,
        )
        self._env.filters["data"] = data_string

    def config(self) -> dict[str, Any]:
        """What identifies these prompts in a run (the folder and its files' text)."""
        if self.directory is None:
            return {}
        return {"prompts": str(self.directory), "prompt_files": dict(self._files)}

    def render(self, name: str, **values: Any) -> str:
        try:
            return self._env.get_template(name).render(**values).strip()
        except jinja2.UndefinedError as exc:
            raise InputError(f"prompt template {name}: {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise InputError(f"prompt template {name}, line {exc.lineno}: {exc.message}") from None

    # comparative regression (spm)
    def comparative_system(self, attribute: Attribute, scale: int = SCALE, reasoning: bool = True) -> str:
        return self.render("comparative_system.j2", attribute=attribute, scale=scale, reasoning=reasoning)

    def comparative_user(
        self,
        attribute: Attribute,
        question: str,
        choices: Mapping[str, str],
        scale: int = SCALE,
        reasoning: bool = True,
    ) -> str:
        return self.render(
            "comparative_user.j2",
            attribute=attribute,
            question=question,
            choices=choices,
            scale=scale,
            reasoning=reasoning,
        )

    # per-response regression
    def regression_system(self, attribute: Attribute, scale: int = SCALE) -> str:
        return self.render("regression_system.j2", attribute=attribute, scale=scale)

    def regression_user(self, attribute: Attribute, question: str, response: str, scale: int = SCALE) -> str:
        return self.render("regression_user.j2", attribute=attribute, question=question, response=response, scale=scale)

    # choice baselines
    def choice_system(self, target: AlignmentTarget | None) -> str:
        criteria = [level_phrase(a, v) for a, v in target.values.items()] if target is not None else []
        return self.render(
            "choice_system.j2", criteria=criteria, target=dict(target.values) if target is not None else None
        )

    def choice_user(self, question: str, choices: Mapping[str, str]) -> str:
        return self.render("choice_user.j2", question=question, choices=choices)

    # train reasonings
    def reasoning_system(self, attribute: Attribute) -> str:
        return self.render("reasoning_system.j2", attribute=attribute)

    def reasoning_user(self, attribute: Attribute, question: str, response: str, value: float) -> str:
        return self.render(
            "reasoning_user.j2",
            attribute=attribute,
            question=question,
            response=response,
            value=value,
            level=level_phrase(attribute.name, value),
        )


DEFAULT_PROMPTS = PromptSet()
