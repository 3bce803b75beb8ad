"""What every command shares: consoles that never read user text as markup, the one-line
error, and the method/judge options generated from :class:`pluralign.settings.Settings`."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pluralign.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.errors import one_line
from pluralign.settings import Settings, make_settings

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def say(text: str, style: str | None = None, err: bool = False) -> None:
    """Print text as it is: brackets in paths or model output are never Rich markup."""
    (err_console if err else console).print(Text(text, style=style or ""), soft_wrap=True)


def error_line(message: str) -> None:
    err_console.print(Text.assemble(("error: ", "bold red"), one_line(message)), soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    error_line(message)
    raise typer.Exit(code)


def registry_from(attributes_file: Path | None) -> AttributeRegistry:
    return DEFAULT_REGISTRY.with_file(attributes_file) if attributes_file else DEFAULT_REGISTRY


AttributesOpt = Annotated[Path | None, typer.Option("--attributes-file", help="JSON/YAML file of extra attributes.")]
MetricOpt = Annotated[
    str,
    typer.Option(
        help="Distance: auto (weighted when the target has weights, else euclidean), euclidean, weighted, l1."
    ),
]
TiesOpt = Annotated[
    str,
    typer.Option(help="exact (the paper's: exact comparison) or tolerant (within 1e-9; reports both)."),
]


# ---- options generated from Settings ---------------------------------------------------------


def _option_type(annotation: Any) -> Any:
    """The type typer should parse (Literal choices become plain strings; pydantic checks them)."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return _option_type(args[0]) | None
    if origin is typing.Literal:
        return str
    if origin is list:
        return list[str] | None
    return annotation


def _settings_parameters() -> list[tuple[str, inspect.Parameter]]:
    params = []
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "cli_group" not in extra:
            continue
        flag = str(extra.get("cli_flag") or "--" + name.replace("_", "-"))
        invert = bool(extra.get("cli_invert"))
        description = info.description or ""
        if typing.get_origin(info.annotation) is typing.Literal:
            description += f" One of: {', '.join(map(str, typing.get_args(info.annotation)))}."
        if invert:
            annotation: Any = Annotated[bool, typer.Option(flag, help=description)]
            default: Any = False
        else:
            annotation = Annotated[_option_type(info.annotation), typer.Option(flag, help=description)]
            default = info.get_default(call_default_factory=True)
            if isinstance(default, list):
                default = None
        params.append(
            (
                name,
                inspect.Parameter(
                    f"opt_{name}", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
                ),
            )
        )
    return params


def settings_from_options(values: dict[str, Any], **more: Any) -> Settings:
    data: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        key = f"opt_{name}"
        if key not in values:
            continue
        value = values[key]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("cli_invert"):
            value = not value
        if value is None and isinstance(info.get_default(call_default_factory=True), list):
            value = []
        data[name] = value
    return make_settings(data, **more)


def with_settings_options(exclude: Sequence[str] = ()) -> Callable[[F], F]:
    """Give a command every method/judge option of :class:`Settings` (defaults and help
    declared there once); the command receives their raw values as one ``options``
    argument, for :func:`settings_from_options`."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values() if p.name != "options"
        ]
        extra = [p for name, p in _settings_parameters() if name not in exclude]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            options = {p.name: kwargs.pop(p.name) for p in extra}
            return func(**kwargs, options=options)

        wrapper.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper  # type: ignore[return-value]

    return decorate


def results_table(results: Sequence[Any], title: str) -> Table:
    table = Table(title=Text(title))
    for col in ("target", "accuracy %", "95% CI", "n_scored", "n_skipped", "n_failed", "weighted", "MSE"):
        table.add_column(col, justify="right" if col != "target" else "left")
    for r in results:
        ci = f"{r.accuracy_ci95[0]:.1f}-{r.accuracy_ci95[1]:.1f}" if r.accuracy_ci95 else "-"
        mse = f"{sum(r.mse.values()) / len(r.mse):.4f}" if r.mse else "-"
        accuracy = f"{r.accuracy:.2f}" if r.accuracy is not None else "-"
        if r.tolerant is not None and r.tolerant.accuracy is not None:
            accuracy += f" (tolerant {r.tolerant.accuracy:.2f})"
        table.add_row(
            Text(r.name),
            accuracy,
            ci,
            str(r.n_scored),
            str(r.n_skipped),
            str(r.n_failed),
            f"{r.weighted_score:.2f}" if r.weighted_score is not None else "-",
            mse,
        )
    return table
