"""Field types that accept what the plain target form accepts and nothing more: a number
is an int or a float (never ``"0.5"`` or ``true``), a count is an int (never ``"3"``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, StrictInt


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    return value


Number = Annotated[float, BeforeValidator(_number)]
Count = StrictInt


def text_problem(text: str) -> str | None:
    """Why a string cannot be sent to a model or written as UTF-8 (a lone surrogate such
    as ``"\\ud800"``, which JSON allows), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds a lone surrogate ({text[exc.start]!r}) at character {exc.start}, which is not text"
    return None


def check_text(value: Any) -> Any:
    """For ``field_validator(..., mode="after")`` on str and list[str] fields."""
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str):
            problem = text_problem(text)
            if problem:
                raise ValueError(problem)
    return value
