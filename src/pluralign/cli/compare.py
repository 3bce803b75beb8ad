"""``pluralign compare``: is one run's lead over another more than noise?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pluralign.cli.common import console
from pluralign.support.strict import MAX_SEED


def register(app: typer.Typer) -> None:
    app.command("compare", short_help="Compare two runs: A minus B, with its interval and tests.")(compare_cmd)


def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="A run folder (pluralign eval --out).")],
    run_b: Annotated[Path, typer.Argument(help="Another run folder on the same benchmark.")],
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the bootstrap and the sign flips.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """A minus B on the items and targets both runs decided: the difference of their accuracies
    with a 95% paired bootstrap interval over items, McNemar's exact test on the pooled decisions,
    and a sign-flip test with the item as the unit."""
    from rich.table import Table

    from pluralign.evaluation.statistics import compare_runs, p_text

    result = compare_runs(str(run_a), str(run_b), seed=seed)
    if as_json:
        print(json.dumps(result.model_dump(), indent=2))
        return
    c = result.comparison
    scope = f"{c.items} items, {len(result.targets)} targets, {c.decisions} decisions"
    table = Table(title=f"{run_a} minus {run_b}: {scope}")
    for column in ("accuracy A", "accuracy B", "A - B", "95% CI", "only A / only B right", "McNemar p", "sign-flip p"):
        table.add_column(column)
    table.add_row(
        f"{result.accuracy_a:.1f}",
        f"{result.accuracy_b:.1f}",
        f"{c.difference:+.1f}",
        f"{c.ci95[0]:+.1f} to {c.ci95[1]:+.1f}",
        f"{c.only_a_right} / {c.only_b_right}",
        p_text(c.mcnemar_p),
        p_text(c.sign_flip_p),
    )
    console.print(table)
