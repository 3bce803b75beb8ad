"""What every command shares: consoles that never read user text as markup, the one-line
error, and CLI options generated from the components' options models."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pluralign.choice.attributes import DEFAULT_REGISTRY, AttributeRegistry
from pluralign.support.errors import one_line
from pluralign.support.options import cli_meta, fields_of, flag_of, literal_choices

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])
KEYWORD = inspect.Parameter.KEYWORD_ONLY


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
SelectionOpt = Annotated[
    str,
    typer.Option(
        help="closest (the paper's: the distance of the predicted values) or expected (the expected distance "
        "under the judge's level probabilities; docs/results.md section 17)."
    ),
]
CalibrationOpt = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        help="A calibration file (pluralign calibrate): each attribute's predictions mapped onto the labels' "
        "scale before choosing; refused for another judge.",
    ),
]
TiesOpt = Annotated[
    str,
    typer.Option(help="exact (the paper's: exact comparison) or tolerant (within 1e-9; reports both)."),
]


# ---- options generated from the components' options models ---------------------------------


def _option_type(annotation: Any) -> Any:
    """The type typer should parse (Literal choices become plain strings; pydantic checks them)."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is Annotated:  # a checked type (a database place): typer parses the plain one
        return _option_type(args[0])
    if origin in (typing.Union, types.UnionType):
        return _option_type(args[0]) | None
    if origin is typing.Literal:
        return str
    if origin is list:
        return list[str] | None
    return annotation


@dataclass(frozen=True)
class _Flag:
    """One generated CLI parameter: the option it sets and, for an old flag, the new one."""

    field: str
    invert: bool
    replaced_by: str | None = None
    old: str = ""


def _parameters(fields: Mapping[str, FieldInfo]) -> list[tuple[inspect.Parameter, _Flag]]:
    """Each field's flag, and its old flags; an old flag two fields claim belongs to the later
    one (``serve`` lists its own options last)."""
    owner = {old: name for name, info in fields.items() for old in cli_meta(info).get("cli_old") or ()}
    params = []
    for name, info in fields.items():
        meta = cli_meta(info)
        flag = flag_of(name, info)
        invert = bool(meta.get("cli_invert"))
        description = info.description or ""
        choices = literal_choices(info)
        if choices:
            description += f" One of: {', '.join(map(str, choices))}."
        panel = str(meta.get("cli_group", "judge")).capitalize() + " options"
        if invert:
            annotation: Any = Annotated[bool, typer.Option(flag, help=description, rich_help_panel=panel)]
            default: Any = False
        else:
            option = typer.Option(flag, help=description, rich_help_panel=panel)
            annotation = Annotated[_option_type(info.annotation), option]
            default = info.get_default(call_default_factory=True)
            if isinstance(default, list):
                default = None
        params.append(
            (inspect.Parameter(f"opt_{name}", KEYWORD, default=default, annotation=annotation), _Flag(name, invert))
        )
        for k, old in enumerate(meta.get("cli_old") or ()):
            if owner[old] != name:
                continue
            hidden = typer.Option(old, hidden=True)
            old_annotation: Any = Annotated[bool if invert else _option_type(info.annotation), hidden]
            params.append(
                (
                    inspect.Parameter(
                        f"old{k}_{name}", KEYWORD, default=False if invert else None, annotation=old_annotation
                    ),
                    _Flag(name, invert, replaced_by=flag, old=old),
                )
            )
    return params


def _given(ctx: typer.Context, param: str) -> bool:
    source = ctx.get_parameter_source(param)
    return source is not None and source.name != "DEFAULT"


def with_options(models: Callable[[], Sequence[type[BaseModel]]], exclude: Sequence[str] = ()) -> Callable[[F], F]:
    """Give a command the CLI options of some options models (defaults, bounds and help are
    declared there once). The command receives the options that were *given* on its command
    line as one ``options`` dict (by option name), for :func:`pluralign.settings.make_settings` or an
    options model; an old flag still works and says what replaced it."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [p.replace(kind=KEYWORD) for p in signature.parameters.values() if p.name != "options"]
        extra = [(p, f) for p, f in _parameters(fields_of(models())) if f.field not in exclude]

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            ctx = kwargs.pop("options_context")
            options: dict[str, Any] = {}
            for param, flag in extra:
                value = kwargs.pop(param.name)
                if not _given(ctx, param.name):
                    continue
                if flag.replaced_by is not None:
                    say(f"warning: {flag.old} is deprecated; use {flag.replaced_by}", style="yellow", err=True)
                options[flag.field] = (not value) if flag.invert else value
            return func(**kwargs, options=options)

        context = inspect.Parameter("options_context", KEYWORD, annotation=typer.Context)
        params = [*own, *(p for p, _ in extra), context]
        wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def with_settings_options(exclude: Sequence[str] = ()) -> Callable[[F], F]:
    """Every option of every method and judge backend (a command that runs any method);
    :func:`pluralign.settings.build_method` refuses the ones the chosen method would not read."""
    from pluralign.settings import components

    return with_options(components, exclude)


# ---- paths as typed ----------------------------------------------------------------------


def named_path(value: str) -> Path:
    """A path option's value as typed. An empty one (``--out "$OUT"`` with the variable unset) is
    refused: ``Path("")`` is the current folder, which the user never named (a run written into
    it, ``--examples ""`` reading ``./train.json``)."""
    if not value.strip():
        raise typer.BadParameter("is empty: name a file or folder (an unset variable?)")
    return Path(value)


def _is_path(annotation: Any) -> bool:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        return any(_is_path(a) for a in args)
    return annotation is Path


def refuse_empty_paths(app: typer.Typer) -> None:
    """Give every path option and argument of every command (the components' generated ones
    included) :func:`named_path` as its parser: the one place an empty path is refused."""
    for command in app.registered_commands:
        if command.callback is None:
            continue
        # Evaluated once and kept: a string annotation (``from __future__ import annotations``)
        # would give typer a fresh ParameterInfo, without the parser, each time it is read.
        hints = typing.get_type_hints(command.callback, include_extras=True)
        for annotation in hints.values():
            if typing.get_origin(annotation) is not Annotated:
                continue
            base, *meta = typing.get_args(annotation)
            for info in meta:
                if isinstance(info, typer.models.ParameterInfo) and _is_path(base) and info.parser is None:
                    info.parser = named_path
        command.callback.__annotations__ = hints
    for group in app.registered_groups:
        if group.typer_instance is not None:
            refuse_empty_paths(group.typer_instance)


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


def group_results_table(results: Sequence[Any], title: str) -> Table:
    """A group target's figures: the share of the group whose own choice was matched, beside
    the most any one response could match (a divided group caps it below 100)."""
    table = Table(title=Text(title))
    columns = ("group", "members", "matched share %", "95% CI", "best possible %", "n_scored", "n_skipped", "n_failed")
    for col in columns:
        table.add_column(col, justify="right" if col != "group" else "left")
    for r in results:
        ci = f"{r.accuracy_ci95[0]:.1f}-{r.accuracy_ci95[1]:.1f}" if r.accuracy_ci95 else "-"
        table.add_row(
            Text(r.name),
            str(r.members),
            f"{r.accuracy:.2f}" if r.accuracy is not None else "-",
            ci,
            f"{r.best_share:.2f}" if r.best_share is not None else "-",
            str(r.n_scored),
            str(r.n_skipped),
            str(r.n_failed),
        )
    return table
