"""``pluralign calibrate``: fit a judge's calibration from runs, or measure one by cross-validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pluralign.cli.common import SelectionOpt, console, fail, say
from pluralign.support.strict import MAX_SEED

if TYPE_CHECKING:
    from pluralign.evaluation.calibrate import CalibrationEffect


def register(app: typer.Typer) -> None:
    app.command("calibrate", short_help="Fit a judge's calibration from its runs on labelled items.")(calibrate_cmd)


def calibrate_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of one judge on labelled items (pluralign eval).")],
    out: Annotated[
        Path | None, typer.Option(help="Write the calibration here (JSON), for --calibration in choose, eval, serve.")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(help="Instead: on each run, fit on all folds of its items but one and choose again on that one."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the folds, bootstrap and sign flips.")] = 0,
    selection: SelectionOpt = "closest",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Fit, per attribute, a non-decreasing map from the judge's predictions to the labels, on
    every labelled item the runs assessed (no model is asked); with --folds, how much such a map
    changes each run's accuracy when it is fit without the items it is applied to."""
    from pluralign.choice.selection import parse_selection
    from pluralign.evaluation.calibrate import calibrate_runs, cross_validate
    from pluralign.prediction.calibration import save_calibration

    if folds is None and out is None:
        fail("say where to write the calibration (--out FILE), or measure it with --folds K")
    if folds is not None:
        found = [cross_validate(run, folds, seed, parse_selection(selection)) for run in runs]
        if as_json:
            print(json.dumps([f.model_dump() for f in found], indent=2))
            return
        _table(found)
        return
    assert out is not None
    calibration = calibrate_runs(runs)
    save_calibration(out, calibration)
    if as_json:
        print(json.dumps(calibration.model_dump(mode="json"), indent=2))
        return
    for name, mapping in calibration.attributes.items():
        shown = ", ".join(f"{x:g} -> {mapping(x):.2f}" for x in (0.0, 0.5, 1.0))
        say(f"{name}: {mapping.pairs} pairs; {shown}")
    say(f"wrote {out} (judge: {', '.join(f'{k} {v}' for k, v in calibration.judge.items())})")


def _table(found: list[CalibrationEffect]) -> None:
    from rich.table import Table
    from rich.text import Text

    from pluralign.evaluation.statistics import p_text

    table = Table(title="calibrated out of fold minus as judged (percent)")
    for column in ("run", "items", "folds", "accuracy", "calibrated", "difference", "95% CI", "sign-flip p"):
        table.add_column(column)
    for f in found:
        c = f.comparison
        cells = [f.run, str(f.items), str(f.folds), f"{f.accuracy:.1f}", f"{f.calibrated:.1f}", f"{c.difference:+.1f}"]
        cells += [f"{c.ci95[0]:+.1f} to {c.ci95[1]:+.1f}", p_text(c.sign_flip_p)]
        table.add_row(*[Text(cell) for cell in cells])
    console.print(table)
