"""Field types that accept what the plain target form accepts and nothing more: a number
is an int or a float (never ``"0.5"`` or ``true``), a count is an int (never ``"3"``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, StrictInt, ValidationError

from pluralign.errors import InputError, validation_message


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


M = TypeVar("M", bound=BaseModel)


def validate_each(model: type[M], items: Iterable[Any], label: Callable[[int], str]) -> list[M]:
    """Every item as ``model``, or an InputError that names the first bad item (``label(i)``
    says where it is, e.g. ``"train.json: item 3: "``)."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            raise InputError(validation_message(exc, label(i))) from None
    return out
