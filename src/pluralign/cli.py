"""The ``pluralign`` command line. Errors print one line and exit 2, never a traceback."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pluralign.errors import PluralignError, one_line

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Steerable pluralistic alignment.")
data_app = typer.Typer(no_args_is_help=True, help="Build benchmarks.")
targets_app = typer.Typer(no_args_is_help=True, help="Alignment targets.")
attributes_app = typer.Typer(no_args_is_help=True, help="Attributes.")
app.add_typer(data_app, name="data")
app.add_typer(targets_app, name="targets")
app.add_typer(attributes_app, name="attributes")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _registry(attributes_file: Path | None) -> Any:
    from pluralign.attributes import DEFAULT_REGISTRY

    return DEFAULT_REGISTRY.with_file(attributes_file) if attributes_file else DEFAULT_REGISTRY


AttributesOpt = Annotated[
    Path | None, typer.Option("--attributes-file", help="JSON/YAML file of extra attributes.")
]


def results_table(results: Sequence[Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("target", "accuracy %", "95% CI", "n_scored", "n_skipped", "weighted", "MSE"):
        table.add_column(col, justify="right" if col != "target" else "left")
    for r in results:
        ci = f"{r.accuracy_ci95[0]:.1f}-{r.accuracy_ci95[1]:.1f}" if r.accuracy_ci95 else "-"
        mse = f"{sum(r.mse.values()) / len(r.mse):.4f}" if r.mse else "-"
        table.add_row(
            r.name,
            f"{r.accuracy:.2f}" if r.accuracy is not None else "-",
            ci,
            str(r.n_scored),
            str(r.n_skipped),
            f"{r.weighted_score:.2f}" if r.weighted_score is not None else "-",
            mse,
        )
    return table


@app.command("eval")
def eval_cmd(
    method: Annotated[str, typer.Option(help="Method name (see `pluralign methods`).")] = "random",
    target: Annotated[list[str] | None, typer.Option(help="JSON file, directory of JSON files, high or low; repeatable.")] = None,
    benchmark: Annotated[Path | None, typer.Option(help="Benchmark dir (train.json/eval.json); or $PLURALIGN_BENCHMARK.")] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/latest"),
    limit: Annotated[int | None, typer.Option(help="Only the first N eval items.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and shuffling.")] = 0,
    metric: Annotated[str, typer.Option(help="euclidean, weighted or l1.")] = "euclidean",
    overwrite: Annotated[bool, typer.Option(help="Start the run directory afresh.")] = False,
    attributes_file: AttributesOpt = None,
) -> None:
    """Evaluate a method on a benchmark against one or more targets."""
    from pluralign.data.benchmark import load_benchmark
    from pluralign.evaluate import evaluate
    from pluralign.methods import MethodSettings, build_method
    from pluralign.selection import Metric
    from pluralign.targets import resolve_target_specs

    if metric not in Metric.__members__:
        fail(f"unknown metric {metric!r} (use euclidean, weighted or l1)")
    registry = _registry(attributes_file)
    bench = load_benchmark(benchmark)
    targets = resolve_target_specs(target or ["high", "low"], bench.attributes, registry)
    meth = build_method(method, MethodSettings(benchmark_dir=bench.path))
    n_items = min(limit, len(bench.eval)) if limit is not None else len(bench.eval)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{method}", total=n_items, rate="")
        import time

        t0 = time.perf_counter()

        def hook(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.2f} items/s")

        try:
            summary = evaluate(bench, meth, targets, out, limit=limit, seed=seed,
                               metric=Metric(metric), registry=registry, overwrite=overwrite,
                               on_progress=hook)
        except KeyboardInterrupt:
            progress.stop()
            from pluralign.evaluate import RunDir

            kept = len({k[0] for k in RunDir(out).load_judgements()})
            err_console.print(f"interrupted: {kept} of {n_items} items kept in {out}; run the same command to continue")
            raise typer.Exit(130) from None
        finally:
            meth.close()
    console.print(results_table(summary.results, f"{method} on {bench.name} ({summary.n_items} items)"))
    console.print(
        f"LLM calls {summary.extra['llm_calls']} (cached {summary.extra['llm_calls_cached']}, "
        f"saved by sharing scores across targets {summary.calls_saved_by_sharing}); "
        f"judged {summary.n_judged_now} items now, {summary.n_resumed} resumed; "
        f"{summary.seconds:.1f} s; results in {summary.out_dir}/results.json",
        highlight=False,
    )


@app.command("score")
def score_cmd(
    path: Annotated[Path, typer.Argument(help="A run directory, or a reference input_output.json.")],
    target: Annotated[list[str] | None, typer.Option(help="Target SPEC (for an input_output.json).")] = None,
    metric: Annotated[str | None, typer.Option(help="euclidean, weighted or l1.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recompute metrics from saved decisions (or the reference's input_output.json)."""
    from pluralign.evaluate import rescore, score_input_output
    from pluralign.targets import resolve_target_specs

    if path.is_dir():
        results = rescore(path, metric)
    else:
        if not target:
            fail("scoring an input_output.json needs --target")
        from pluralign.evaluate import input_output_attributes

        targets = resolve_target_specs(target or [], input_output_attributes(path))
        results = [score_input_output(path, t, metric or "euclidean") for t in targets]
    if as_json:
        print(json.dumps([r.model_dump() for r in results], indent=2))
    else:
        console.print(results_table(results, f"scores of {path}"))


@data_app.command("helpsteer2")
def data_helpsteer2(out: Annotated[Path, typer.Option(help="Output directory.")]) -> None:
    """Build steerable HelpSteer2 from nvidia/HelpSteer2 (needs internet)."""
    from pluralign.data.helpsteer2 import build_helpsteer2

    n_train, n_eval = build_helpsteer2(out)
    console.print(f"wrote {out}/train.json ({n_train}) and {out}/eval.json ({n_eval})")


@data_app.command("mic")
def data_mic(
    csv_path: Annotated[Path, typer.Argument(help="MIC.csv")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    split: Annotated[bool, typer.Option("--split/--no-split", help="Stratified train/eval split, or all.json.")] = True,
) -> None:
    """Build the MIC benchmark from MIC.csv."""
    from pluralign.data.mic import build_mic

    stats = build_mic(csv_path, out, split=split)
    console.print(
        f"{stats.rows} rows, {stats.questions} questions: kept {stats.kept_questions}, dropped "
        f"{stats.dropped_single_answer} with one answer and {stats.dropped_missing_agreement} with a "
        f"missing A_agrees; {'; '.join(stats.notes)}; written to {out}",
        highlight=False,
    )


@targets_app.command("sample")
def targets_sample(
    attributes: Annotated[int, typer.Option("--attributes", help="Attributes per target (K).")],
    count: Annotated[int, typer.Option(help="How many targets (N).")] = 10,
    seed: Annotated[int, typer.Option(help="random.seed, as the paper (42).")] = 42,
    levels: Annotated[int | None, typer.Option(help="Label levels (5 HelpSteer2, 7 MIC).")] = None,
    preset: Annotated[str, typer.Option(help="helpsteer2 or mic: attribute names and levels.")] = "helpsteer2",
    names: Annotated[str | None, typer.Option(help="Comma-separated attribute names (overrides preset).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write {K}attributes_target{NN}.json here.")] = None,
) -> None:
    """Sample targets as the paper did (0.5 excluded)."""
    from pluralign.attributes import HELPSTEER2, MIC, DEFAULT_REGISTRY
    from pluralign.files import write_text_atomic
    from pluralign.targets import sample_targets

    presets = {"helpsteer2": (list(HELPSTEER2), 5), "mic": (list(MIC), 7)}
    if preset not in presets:
        fail(f"unknown preset {preset!r} (helpsteer2 or mic)")
    attr_names, default_levels = presets[preset]
    if names:
        attr_names = [n.strip() for n in names.split(",") if n.strip()]
        DEFAULT_REGISTRY.require(attr_names)
    n_levels = levels or default_levels
    if n_levels < 2:
        fail("--levels must be at least 2")
    sampled = sample_targets(attr_names, n_levels, attributes, count, seed)
    for i, values in enumerate(sampled):
        if out:
            write_text_atomic(out / f"{attributes}attributes_target{i:02d}.json", json.dumps(values))
        else:
            print(json.dumps(values))
    if out:
        console.print(f"wrote {len(sampled)} targets to {out}")


@attributes_app.command("list")
def attributes_list(attributes_file: AttributesOpt = None) -> None:
    """Show the known attributes and their descriptions."""
    registry = _registry(attributes_file)
    table = Table("name", "levels", "description")
    for name in registry:
        attr = registry[name]
        table.add_row(attr.name, str(attr.levels), attr.description)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app, turning known errors into one line."""
    try:
        app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except PluralignError as exc:
        err_console.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err_console.print(f"[bold red]error:[/] {where}: {first['msg']}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
