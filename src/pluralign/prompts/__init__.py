"""Every prompt and JSON schema pluralign sends, in one place.

Templates are Jinja2 files beside this module (written for pluralign, with the paper's
structure); methods compose them and never build prompt text themselves.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import jinja2

from pluralign.attributes import Attribute
from pluralign.errors import InputError
from pluralign.judges.base import ChatMessage
from pluralign.targets import AlignmentTarget

SCALE = 100
LETTERS = string.ascii_uppercase
REASONING_MAX = 512


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("pluralign", "prompts/templates"),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def render(name: str, **values: Any) -> str:
    return _env().get_template(name).render(**values).strip()


def letters_for(n: int) -> list[str]:
    if n > len(LETTERS):
        raise InputError(f"at most {len(LETTERS)} responses can be compared at once, got {n}")
    return list(LETTERS[:n])


def lettered(responses: Sequence[str]) -> dict[str, str]:
    return dict(zip(letters_for(len(responses)), responses, strict=False))


# ---- schemas ---------------------------------------------------------------------------


def _scored_item(scale: int, allowed: Sequence[int] | None = None) -> dict[str, Any]:
    # An enum, not minimum/maximum: llama.cpp's grammar converter ignores integer bounds.
    values = list(allowed) if allowed is not None else list(range(scale + 1))
    return {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string", "minLength": 1, "maxLength": REASONING_MAX},
            "score": {"type": "integer", "enum": values},
        },
        "required": ["reasoning", "score"],
    }


def comparative_schema(
    letters: Sequence[str], scale: int = SCALE, allowed: Sequence[int] | None = None
) -> dict[str, Any]:
    item = _scored_item(scale, allowed)
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


# ---- messages --------------------------------------------------------------------------


def comparative_system(attribute: Attribute, scale: int = SCALE) -> str:
    return render("comparative_system.j2", attribute=attribute, scale=scale)


def comparative_user(attribute: Attribute, question: str, choices: Mapping[str, str], scale: int = SCALE) -> str:
    return render("comparative_user.j2", attribute=attribute, question=question, choices=choices, scale=scale)


def regression_system(attribute: Attribute, scale: int = SCALE) -> str:
    return render("regression_system.j2", attribute=attribute, scale=scale)


def regression_user(attribute: Attribute, question: str, response: str, scale: int = SCALE) -> str:
    return render("regression_user.j2", attribute=attribute, question=question, response=response, scale=scale)


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


def choice_system(target: AlignmentTarget | None) -> str:
    criteria = [level_phrase(a, v) for a, v in target.values.items()] if target is not None else []
    return render("choice_system.j2", criteria=criteria)


def choice_user(question: str, choices: Mapping[str, str]) -> str:
    return render("choice_user.j2", question=question, choices=choices)


def example_reasoning(attribute: str, value: float) -> str:
    """A stand-in reasoning for labelled examples that come without one."""
    return "The response " + level_phrase(attribute, value)[0].lower() + level_phrase(attribute, value)[1:] + "."


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
