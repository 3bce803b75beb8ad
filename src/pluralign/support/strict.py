"""Input read strictly: JSON as the one parser every door uses (:func:`loads`), and field types
that accept what the plain target form accepts and nothing more: a number is an int or a
float (never ``"0.5"`` or ``true``), a count is an int (never ``"3"``), a seed fits the
32 bits every backend takes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, ValidationError

from pluralign.support.errors import InputError, validation_message


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, not {type(value).__name__}")
    return value


Number = Annotated[float, BeforeValidator(_number)]
Count = StrictInt
MAX_SEED = 2**31 - 1


def not_blank(problem: str) -> AfterValidator:
    """A validator refusing a text of nothing but whitespace, saying ``problem``: the one check
    behind a question and an option's text."""

    def check(value: str) -> str:
        if not value.strip():
            raise ValueError(problem)
        return value

    return AfterValidator(check)


Filled = Annotated[str, not_blank("is empty (an unset variable?)")]
"""An option's text that must say something: an empty one (``--model "$M"`` with ``M`` unset) is
refused, never taken for the default or for the current folder."""

Seed = Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]
"""A random seed: what every backend takes as given (llama.cpp reads 2**32 - 1 as "pick one at
random", some servers take a signed 32-bit one), with room for the seed + i of each sample."""


class Closed(BaseModel):
    """A request or file of pluralign's own whose fields are all named: a field it does not know
    (a misspelt ``samples``) is refused, never dropped in silence for a default."""

    model_config = ConfigDict(extra="forbid")


def known_fields(raw: Mapping[str, Any], fields: Sequence[str], where: str) -> None:
    """The door of the forms read by hand (a target, a group, ``--input``): a field the form does
    not hold is refused in one line, as :class:`Closed` refuses it for a model."""
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0]!r} (this form holds {', '.join(fields)})")


def check_seed(seed: int, what: str = "seed") -> int:
    """``seed`` if it is a :data:`Seed`, else an InputError naming the range (the Python API's
    door; requests and flags are checked by their types)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InputError(f"{what} must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    return seed


class JSONProblem(ValueError):
    """JSON that parses but is not data pluralign accepts (a key twice, NaN, a lone surrogate)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JSONProblem(f"the key {key!r} appears twice in one object")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise JSONProblem(f"{name} is not a JSON number")


def _surrogates(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise JSONProblem(f"a string {problem}")
        elif isinstance(item, dict):
            for key, inner in item.items():
                stack.append(key)
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def loads(text: str | bytes) -> Any:
    """``json.loads`` for anything a person or a client sends: a key given twice in one object,
    ``NaN``/``Infinity`` and lone surrogates are refused (:class:`JSONProblem`), never
    silently resolved; bad JSON is a ``json.JSONDecodeError`` and deep nesting a
    ``RecursionError``, as with ``json.loads``."""
    value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    _surrogates(value)
    return value


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


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    import jsonschema  # loaded on the first check, not by every CLI start

    schema = json.loads(schema_text)
    kind = jsonschema.validators.validator_for(schema)
    kind.check_schema(schema)  # once per schema, not once per answer (most of a check's time)
    return kind(schema)


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a JSON schema (None: it is one), checked once and kept."""
    import jsonschema

    if not isinstance(schema, dict):
        return "must be a JSON object"
    try:
        _validator(json.dumps(schema, sort_keys=True))
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"not a JSON schema ({where + ': ' if where else ''}{exc.message})"
    except (TypeError, ValueError, RecursionError) as exc:
        return f"not a JSON schema ({' '.join(str(exc).split())[:100]})"
    return None


def schema_problem(value: Any, schema: dict[str, Any]) -> str | None:
    """Why ``value`` does not obey ``schema`` (the most relevant error, with where: what
    ``jsonschema.validate`` would raise), or None. The checked schema is kept, so the
    thousands of answers to one schema pay for its check once. A schema that is not one raises
    ``jsonschema.SchemaError``."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "answer"
    return f"{where}: {error.message}"
