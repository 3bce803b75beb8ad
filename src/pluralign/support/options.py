"""Options: each component (a judge backend, a method, the cache, the service) declares what
can be set about it as a small pydantic model next to its code, with its CLI flag.

The CLI builds its flags from these models and the Python API and the service validate
against the same ones, so a default, a bound and a help text are written once.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from pluralign.support.errors import InputError, validation_message

OptionsT = TypeVar("OptionsT", bound="Options")


class Options(BaseModel):
    """Base of every options model: frozen (a change is a copy), unknown names refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def override(self: OptionsT, **changes: Any) -> OptionsT:
        """A validated copy with some options changed (None values are ignored)."""
        return validate(type(self), {**self.model_dump(), **{k: v for k, v in changes.items() if v is not None}})


class NoOptions(Options):
    """For a component with nothing to set."""


def cli(
    flag: str | None = None,
    invert: bool = False,
    group: str = "judge",
    old: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Field metadata for the CLI: its flag (default ``--field-name``); for booleans whether
    the flag turns the setting off (``--no-cache`` for ``cache``); the help panel; and old
    flags that still work with a deprecation warning."""
    return {"cli_flag": flag, "cli_invert": invert, "cli_group": group, "cli_old": list(old)}


def cli_meta(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def flag_of(name: str, info: FieldInfo | None = None) -> str:
    meta = cli_meta(info) if info is not None else {}
    return str(meta.get("cli_flag") or "--" + name.replace("_", "-"))


def fields_of(models: Iterable[type[BaseModel]]) -> dict[str, FieldInfo]:
    """The CLI fields of several models, each name once; a name declared twice with a
    different type or default is a programming error, reported as such."""
    out: dict[str, FieldInfo] = {}
    owner: dict[str, str] = {}
    for model in models:
        for name, info in model.model_fields.items():
            if "cli_group" not in cli_meta(info):
                continue
            if name in out:
                same = out[name].annotation == info.annotation and out[name].default == info.default
                if not same:
                    raise TypeError(f"option {name!r} is declared differently by {owner[name]} and {model.__name__}")
                continue
            out[name] = info
            owner[name] = model.__name__
    return out


def literal_choices(info: FieldInfo) -> tuple[Any, ...]:
    return typing.get_args(info.annotation) if typing.get_origin(info.annotation) is typing.Literal else ()


def input_error(exc: ValidationError, fields: Mapping[str, FieldInfo] | None = None) -> InputError:
    """A pydantic error as one line that names the option (its flag) at fault."""
    known = fields or {}
    return InputError(validation_message(exc, name=lambda field: flag_of(field, known.get(field))))


def take(model: type[OptionsT], given: dict[str, Any]) -> OptionsT:
    """``model`` from the options in ``given`` that it declares, removed from ``given`` (a
    command that runs a component of its own beside a method: the rest are the method's)."""
    return validate(model, {name: given.pop(name) for name in list(given) if name in model.model_fields})


def validate(model: type[OptionsT], values: Mapping[str, Any]) -> OptionsT:
    """``model`` from plain values, or an InputError naming the option at fault."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise input_error(exc, model.model_fields) from None
