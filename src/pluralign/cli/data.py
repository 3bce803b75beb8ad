"""``pluralign data``: build benchmarks, and write reasonings for a train set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from pluralign.cli.common import (
    AttributesOpt,
    err_console,
    registry_from,
    say,
    with_options,
)
from pluralign.settings import make_settings
from pluralign.support.strict import MAX_SEED

data_app = typer.Typer(no_args_is_help=True, help="Build benchmarks.")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("helpsteer2")
def data_helpsteer2(out: Annotated[Path, typer.Option(help="Output directory.")]) -> None:
    """Build steerable HelpSteer2 from nvidia/HelpSteer2 (needs internet)."""
    from pluralign.evaluation.data.helpsteer2 import build_helpsteer2

    n_train, n_eval, report = build_helpsteer2(out)
    say(f"{report.summary()}")
    say(f"wrote {out / 'train.json'} ({n_train}) and {out / 'eval.json'} ({n_eval})")


@data_app.command("mic")
def data_mic(
    csv_path: Annotated[Path, typer.Argument(help="MIC.csv")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    split: Annotated[bool, typer.Option("--split/--no-split", help="Stratified train/eval split, or all.json.")] = True,
) -> None:
    """Build the MIC benchmark from MIC.csv."""
    from pluralign.evaluation.data.mic import build_mic

    stats = build_mic(csv_path, out, split=split)
    say(
        f"{stats.rows} rows, {stats.questions} questions: kept {stats.kept_questions}, dropped "
        f"{stats.dropped_single_answer} with one answer and {stats.dropped_missing_agreement} with a "
        f"missing A_agrees; {'; '.join(stats.notes)}; written to {out}"
    )


def _reasoning_components() -> list[Any]:
    from pluralign.evaluation.reasonings import ReasoningOptions
    from pluralign.settings import judge_components

    return [*judge_components(), ReasoningOptions]


@data_app.command("reasonings")
@with_options(_reasoning_components)
def data_reasonings(
    benchmark: Annotated[Path, typer.Option(help="Benchmark folder whose train.json gets reasonings.")],
    overwrite: Annotated[bool, typer.Option(help="Write new reasonings over existing ones.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N train items.")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed for sampling.")] = 0,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Write an LLM reasoning for every train response and attribute (resumable, cached)."""
    from pluralign.cli.interrupt import farewell, is_interrupt
    from pluralign.evaluation.reasonings import PROGRESS, ReasoningOptions, add_reasonings
    from pluralign.settings import SettingsResources, judge_components
    from pluralign.support.errors import DeadlineExceeded, InputError
    from pluralign.support.options import take

    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    given = dict(options or {})
    writing = take(ReasoningOptions, given)
    settings = make_settings(given)
    settings.refuse_unused(judge_components(settings.backend), f"--backend {settings.backend}")
    backend = SettingsResources(settings, "reasonings").judge()
    try:
        with Progress(
            TextColumn("reasonings"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
        ) as progress:
            task = progress.add_task("reasonings", total=None)
            stats = add_reasonings(
                benchmark,
                backend,
                registry_from(attributes_file),
                writing,
                seed=seed,
                overwrite=overwrite,
                limit=limit,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except (KeyboardInterrupt, DeadlineExceeded) as exc:
        if not is_interrupt(exc):
            raise
        farewell(f"interrupted: progress is kept in {benchmark / PROGRESS}; run the same command to continue")
        raise typer.Exit(130) from None
    finally:
        backend.close()
    say(
        f"{stats.items} train items: {stats.written} reasonings written, {stats.kept} kept, "
        f"{stats.resumed} items resumed; {benchmark / 'train.json'} updated"
    )
