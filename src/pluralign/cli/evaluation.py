"""``pluralign eval``, ``score`` and ``report``."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pluralign.cli.common import (
    AttributesOpt,
    CalibrationOpt,
    MetricOpt,
    SelectionOpt,
    TiesOpt,
    console,
    err_console,
    fail,
    group_results_table,
    registry_from,
    results_table,
    say,
    with_settings_options,
)
from pluralign.settings import build_method, make_settings
from pluralign.support.strict import MAX_SEED

EXIT_PENDING = 3
"""``eval --backend batch``: requests were written; nothing is scored until they are imported."""


def renamed(command: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """``command`` under its old name: the same options, and a warning that names the new one."""

    @functools.wraps(command)
    def old_name(*args: Any, **kwargs: Any) -> Any:
        say(f"warning: `pluralign {old}` is now `pluralign {new}`", style="yellow", err=True)
        return command(*args, **kwargs)

    return old_name


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)
    app.command("metrics", short_help="Recompute a run's metrics from its saved decisions.")(metrics_cmd)
    app.command("score", hidden=True, help="The old name of `pluralign metrics`.")(
        renamed(metrics_cmd, "score", "metrics")
    )
    app.command("report", short_help="Write a markdown report with plots from run folders.")(report_cmd)


WorkersOpt = Annotated[
    int | None,
    typer.Option(
        help="Items judged at once (default: 1 in process; a server judge: --concurrency x servers, so that many "
        "requests stay in flight across items)."
    ),
]


@with_settings_options()
def eval_cmd(
    method: Annotated[str, typer.Option(help="Method name (see `pluralign methods`).")] = "random",
    target: Annotated[
        list[str] | None,
        typer.Option(
            help="JSON file, a group (.jsonl, or a JSON list of weighted profiles), a directory of them, "
            "inline JSON, high or low; repeatable."
        ),
    ] = None,
    benchmark: Annotated[
        Path | None, typer.Option(help="Benchmark dir (train.json/eval.json); or $PLURALIGN_BENCHMARK.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/latest"),
    limit: Annotated[int | None, typer.Option(help="Only the first N eval items.")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed for sampling and shuffling.")] = 0,
    metric: MetricOpt = "auto",
    ties: TiesOpt = "exact",
    selection: SelectionOpt = "closest",
    calibration: CalibrationOpt = None,
    overwrite: Annotated[bool, typer.Option(help="Start the run directory afresh.")] = False,
    on_invalid: Annotated[
        str, typer.Option(help="skip: record an item the judge never answers validly as failed and go on; stop.")
    ] = "skip",
    workers: WorkersOpt = None,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Evaluate a method on a benchmark against one or more targets."""
    from pluralign.choice.selection import parse_metric, parse_selection, parse_ties
    from pluralign.choice.target_data import resolve_target_specs
    from pluralign.evaluation.data.benchmark import load_benchmark
    from pluralign.evaluation.evaluate import OnInvalid
    from pluralign.evaluation.runs import RunDir
    from pluralign.prediction.calibration import load_calibration
    from pluralign.prediction.methods import method_spec

    metric_ = parse_metric(metric)
    ties_ = parse_ties(ties)
    if on_invalid not in OnInvalid.__members__:
        fail(f"--on-invalid must be stop or skip, not {on_invalid!r}")
    if limit is not None and limit < 1:
        fail(f"--limit must be at least 1, got {limit}")
    if workers is not None and workers < 1:
        fail(f"--workers must be at least 1, got {workers}")
    method_spec(method)
    registry = registry_from(attributes_file)
    RunDir(out).check_writable(overwrite)
    bench = load_benchmark(benchmark)
    targets = resolve_target_specs(target or ["high", "low"], bench.attributes, registry)
    settings = make_settings(options or {}, benchmark_dir=bench.path)
    meth = build_method(method, settings)
    run: dict[str, Any] = dict(limit=limit, seed=seed, metric=metric_, registry=registry, overwrite=overwrite)
    run |= dict(workers=workers, on_invalid=OnInvalid(on_invalid), ties=ties_, selection=parse_selection(selection))
    run["calibration"] = load_calibration(calibration) if calibration is not None else None
    summary = _evaluate_with_progress(bench, meth, targets, out, run)
    if summary.n_pending:
        message = getattr(getattr(meth, "backend", None), "pending_message", None)
        say(message() if callable(message) else f"{summary.n_pending} items wait for batch answers")
        raise typer.Exit(EXIT_PENDING)
    _show(summary, f"{method} on {bench.name} ({summary.n_items} items)")


def _show(summary: Any, title: str) -> None:
    """A run's tables (people's targets, then groups) and what it cost."""
    from pluralign.evaluation.runs import RunDir

    people = [r for r in summary.results if not r.is_group]
    if people:
        console.print(results_table(people, title))
    groups = [r for r in summary.results if r.is_group]
    if groups:
        console.print(group_results_table(groups, f"{title}: groups"))
    failed = f"; {summary.n_failed} items failed (retried by the next run)" if summary.n_failed else ""
    say(
        f"LLM calls made now {summary.stats.calls} (answered by the cache {summary.stats.cached}, "
        f"saved by sharing scores across targets {summary.calls_saved_by_sharing}); "
        f"judged {summary.n_judged_now} items now, {summary.n_resumed} resumed{failed}; "
        f"{summary.seconds:.1f} s; results in {RunDir(summary.out_dir).results_path}"
    )


def _evaluate_with_progress(bench: Any, meth: Any, targets: Any, out: Path, run: dict[str, Any]) -> Any:
    """Evaluate with a progress bar; Ctrl-C says how many items are kept and exits 130."""
    from pluralign.cli.interrupt import farewell, is_interrupt, on_hard_exit
    from pluralign.evaluation.evaluate import evaluate
    from pluralign.evaluation.runs import RunDir
    from pluralign.support.errors import DeadlineExceeded

    limit = run["limit"]
    n_items = min(limit, len(bench.eval)) if limit is not None else len(bench.eval)

    def kept_line() -> str:
        kept = RunDir(out).finished_items()
        return f"interrupted: {kept} of {n_items} items kept in {out}; run the same command to continue"

    on_hard_exit(kept_line)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"))
    with Progress(*columns, TimeRemainingColumn(), console=err_console, transient=True) as progress:
        task = progress.add_task(meth.name, total=n_items, rate="")
        t0 = time.perf_counter()

        def hook(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.2f} items/s")

        try:
            return evaluate(bench, meth, targets, out, on_progress=hook, **run)
        except (KeyboardInterrupt, DeadlineExceeded) as exc:
            if not is_interrupt(exc):
                raise
            progress.stop()
            farewell(kept_line())
            raise typer.Exit(130) from None
        finally:
            meth.close()


def metrics_cmd(
    path: Annotated[Path, typer.Argument(help="A run directory, or a reference input_output.json.")],
    target: Annotated[list[str] | None, typer.Option(help="Target SPEC (for an input_output.json).")] = None,
    metric: Annotated[str | None, typer.Option(help="auto, euclidean, weighted or l1 (default: the run's).")] = None,
    ties: Annotated[str | None, typer.Option(help="exact (the paper's) or tolerant (reports both).")] = None,
    selection: Annotated[
        str | None,
        typer.Option(help="Choose again from the run's assessments: closest (the paper's) or expected."),
    ] = None,
    calibration: CalibrationOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    benchmark: Annotated[
        Path | None,
        typer.Option(help="The run's benchmark folder: adds length control (docs/concepts.md, length)."),
    ] = None,
) -> None:
    """Recompute metrics from saved decisions (or the reference's input_output.json); with
    --benchmark, also how much of the run a length rule explains."""
    from pluralign.choice.selection import parse_metric, parse_selection, parse_ties
    from pluralign.choice.target_data import resolve_target_specs
    from pluralign.evaluation.grading import rescore
    from pluralign.evaluation.reference import input_output_attributes, score_input_output

    metric_ = parse_metric(metric) if metric else None
    ties_ = parse_ties(ties) if ties else None
    groups = []
    if path.is_dir():
        adjust = None
        if calibration is not None:
            from pluralign.evaluation.calibrate import calibrating
            from pluralign.prediction.calibration import load_calibration

            adjust = calibrating(load_calibration(calibration), path)
        results = rescore(path, metric_, ties_, parse_selection(selection) if selection else None, adjust)
        groups = [r for r in results if r.is_group]
        results = [r for r in results if not r.is_group]
    else:
        if not target:
            fail("scoring an input_output.json needs --target")
        targets = resolve_target_specs(target, input_output_attributes(path))
        results = [score_input_output(path, t, metric_ or "auto", ties_ or "exact") for t in targets]
    control = _length_control(path, benchmark) if benchmark is not None else None
    if as_json:
        rows = [r.payload() for r in results] + [{"group": True, **g.payload()} for g in groups]
        print(
            json.dumps(rows if control is None else {"targets": rows, "length_control": control.model_dump()}, indent=2)
        )
    else:
        if results or not groups:
            console.print(results_table(results, f"scores of {path}"))
        if groups:
            console.print(group_results_table(groups, f"groups of {path}"))
        if control is not None:
            from rich.markdown import Markdown

            from pluralign.evaluation.length_control import markdown

            console.print(Markdown("\n".join(markdown(control))))


def _length_control(path: Path, benchmark: Path) -> Any:
    from pluralign.evaluation.data.benchmark import load_benchmark
    from pluralign.evaluation.length_control import for_run

    if not path.is_dir():
        fail("--benchmark needs a run folder (an input_output.json does not say its items)")
    return for_run(path, load_benchmark(benchmark))


def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to compare.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md and the PNG plots.")] = Path("report"),
    item: Annotated[int, typer.Option(help="Item for the radar chart.")] = 0,
    benchmark: Annotated[
        Path | None, typer.Option(help="The runs' benchmark folder: adds each run's length control.")
    ] = None,
) -> None:
    """Markdown report with plots: accuracy per method and per number of attributes, MSE,
    calibration; with --benchmark, each run beside the length baseline."""
    from pluralign.evaluation.data.benchmark import load_benchmark
    from pluralign.evaluation.report import write_report

    bench = load_benchmark(benchmark) if benchmark is not None else None
    say(f"wrote {write_report(runs, out, item=item, benchmark=bench)}")
