"""``pluralign respond``: write candidates with a generator, and print the one that fits."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pluralign.cli.common import AttributesOpt, console, registry_from, say, with_options
from pluralign.prediction.methods.registry import DEFAULT_METHOD
from pluralign.support.strict import MAX_SEED


def register(app: typer.Typer) -> None:
    app.command("respond", short_help="Generate candidate answers; print the one closest to the target.")(respond_cmd)


def _components() -> list[Any]:
    from pluralign.prediction.generators import GeneratorOptions
    from pluralign.settings import components

    return [*components(), GeneratorOptions]


@with_options(_components)
def respond_cmd(
    target: Annotated[str, typer.Option(help="Target JSON file or inline JSON, or a group (see `choose --help`).")],
    question: Annotated[str, typer.Option(help="What to answer.")],
    method: Annotated[str, typer.Option(help="Method that judges the candidates.")] = DEFAULT_METHOD,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed of the candidates and of the judge.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Generate candidate answers (a server with --generator-base-url, else the local model) and
    print the one closest to the target, with its explanation."""
    from rich.text import Text

    from pluralign.api import respond
    from pluralign.cli.choose import read_target
    from pluralign.prediction.generators import GeneratorOptions
    from pluralign.prediction.methods import method_spec
    from pluralign.support.options import take

    method_spec(method)
    given = dict(options or {})
    generator = take(GeneratorOptions, given)
    wanted = read_target(target, registry_from(attributes_file))
    out = respond(question, wanted, method=method, seed=seed, generator=generator, **given)
    if as_json:
        body = {
            "response": out.response,
            "selected_index": out.selected_index,
            "candidates": out.candidates,
            "explanation": out.choice.explanation.sentence if out.choice.explanation else out.choice.reasoning,
            "confidence": out.choice.confidence,
            "predictions": out.choice.predictions,
            "distances": out.choice.distances,
        }
        print(json.dumps(body, indent=2))
        return
    say(out.response)
    console.print(Text.assemble(("Why: ", "bold"), out.choice.reasoning))
    if out.choice.explanation is not None and out.choice.explanation.sentence:
        console.print(Text.assemble(("Over the runner-up: ", "bold"), out.choice.explanation.sentence))
    say(f"(candidate {out.selected_index} of {len(out.candidates)} from {out.generator_model})", style="dim")
