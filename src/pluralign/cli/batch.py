"""``pluralign batch import``: bring OpenAI Batch results into the judgement cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pluralign.cli.common import say

batch_app = typer.Typer(no_args_is_help=True, help="OpenAI Batch files (vllm run-batch, OpenAI Batch API).")


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")


@batch_app.command("import")
def import_cmd(
    results: Annotated[list[Path], typer.Argument(help="Batch output files (JSON Lines).")],
    cache: Annotated[Path | None, typer.Option("--cache", help="Judgement cache file (SQLite).")] = None,
) -> None:
    """Validate each result against its exported request and store the valid answers."""
    from pluralign.prediction.judges.batch import import_results
    from pluralign.prediction.judges.cache import JudgementCache, default_cache_path

    store = JudgementCache(cache or default_cache_path())
    try:
        report = import_results(results, store)
    finally:
        store.close()
    for problem in report.problems:
        say(f"warning: {problem}", style="yellow", err=True)
    say(report.summary())
    if report.lines and not (report.valid or report.already or report.invalid):
        raise typer.Exit(2)
