"""``pluralign choose``: one decision, with its reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pluralign.cli.common import (
    AttributesOpt,
    CalibrationOpt,
    MetricOpt,
    SelectionOpt,
    TiesOpt,
    console,
    registry_from,
    say,
    with_settings_options,
)
from pluralign.prediction.methods.registry import DEFAULT_METHOD
from pluralign.settings import make_settings
from pluralign.support.errors import InputError
from pluralign.support.files import read_json
from pluralign.support.strict import MAX_SEED, known_fields


def register(app: typer.Typer) -> None:
    app.command("choose")(choose_cmd)


def read_target(spec: str, registry: Any) -> Any:
    """A target or a group from a file (``.json``, ``.jsonl``), or inline JSON."""
    from pluralign.choice.target_data import read_target as read

    return read(spec, registry)


@with_settings_options()
def choose_cmd(
    spec: Annotated[
        str,
        typer.Option(
            "--target",
            help="Target JSON file, or inline JSON like '{\"care\": 1}'; or a group: a .jsonl file of weighted "
            'profiles, a JSON list of them, or {"samples": [...]}.',
        ),
    ],
    question: Annotated[str | None, typer.Option(help="The question.")] = None,
    response: Annotated[list[str] | None, typer.Option(help="A candidate response; repeat.")] = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="JSON file with question (or prompt) and responses.")
    ] = None,
    method: Annotated[str, typer.Option(help="Method name (see `pluralign methods`).")] = DEFAULT_METHOD,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Seed for sampling and shuffling.")] = 0,
    metric: MetricOpt = "auto",
    ties: TiesOpt = "exact",
    selection: SelectionOpt = "closest",
    calibration: CalibrationOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Choose the response that best fits a target, and say why."""
    from pluralign.api import Chooser
    from pluralign.choice.selection import parse_metric, parse_selection, parse_ties
    from pluralign.prediction.calibration import load_calibration
    from pluralign.prediction.methods import method_spec

    registry = registry_from(attributes_file)
    probe = _read_probe(question, response, input_file)
    target = read_target(spec, registry)
    method_spec(method)
    settings = make_settings(options or {})
    mapping = load_calibration(calibration) if calibration is not None else None
    chooser = Chooser(
        method, settings, registry, parse_metric(metric), parse_ties(ties), parse_selection(selection), mapping
    )
    try:
        result = chooser.choose(probe.question, probe.responses, target, seed=seed)
    finally:
        chooser.close()
    if as_json:
        print(json.dumps(result.model_dump(include=JSON_FIELDS), indent=2))
    else:
        _print_result(result, target, method)


JSON_FIELDS = {
    "selected_index",
    "reasoning",
    "predictions",
    "samples",
    "distances",
    "tied",
    "target",
    "weights",
    "method",
    "explanation",
    "confidence",
    "near_tie",
    "shares",
    "group",
    "members",
}


INPUT_FIELDS = ("question", "prompt", "responses", "labels", "reasonings", "id")
"""What ``--input`` holds: a question (``prompt`` in the paper's files) and its responses; a
benchmark item's labels and reasonings, and a choices line's id, may come along unread."""


def _read_probe(question: str | None, response: list[str] | None, input_file: Path | None) -> Any:
    """The question and responses from the options, or from ``--input`` (options win)."""
    from pluralign.choice.probes import BOTH_NAMES, make_probe

    q: Any = question
    r: Any = response
    if input_file is not None:
        raw = read_json(input_file, "input file")
        if not isinstance(raw, dict):
            raise InputError(f"{input_file}: expected an object with question and responses")
        known_fields(raw, INPUT_FIELDS, str(input_file))  # a "target" in the file is not read: refused
        if "question" in raw and "prompt" in raw:  # one would be judged and the other passed over
            raise InputError(f"{input_file}: {BOTH_NAMES}")
        q = question if question is not None else raw.get("question", raw.get("prompt"))
        r = response if response else raw.get("responses")
    if q is None:
        raise InputError("give --question (or --input with a question)")
    where = f"{input_file}: " if input_file is not None and not response else ""
    return make_probe(q, r if r is not None else [], where)


def _print_result(result: Any, target: Any, method: str) -> None:
    whom = f" for the group {result.group} ({result.members} profiles)" if result.shares is not None else ""
    console.print(Text.assemble(("Chosen: ", "bold"), f"response {result.selected_index}{whom} ({method})"))
    say(result.selected_response)
    console.print(Text.assemble(("Why: ", "bold"), result.reasoning))
    if result.explanation is not None and result.explanation.sentence:
        head = "The group: " if result.shares is not None else "Over the runner-up: "
        console.print(Text.assemble((head, "bold"), result.explanation.sentence))
    if result.confidence is not None:
        note = result.explanation.confidence_note if result.explanation else ""
        console.print(
            Text.assemble(("Confidence: ", "bold"), f"{result.confidence:.0%} of re-judgements agree ({note})")
        )
    elif result.explanation is not None and result.explanation.confidence_note:
        console.print(Text.assemble(("Confidence: ", "bold"), f"unknown ({result.explanation.confidence_note})"))
    if result.tied:
        say(f"tie between responses {result.tied}; the lowest index was taken", style="yellow")
    if result.predictions is not None:
        console.print(_predictions_table(result, target))


def _predictions_table(result: Any, target: Any) -> Table:
    grouped = result.shares is not None
    table = Table(title="predicted attribute values")
    table.add_column("")
    for name in result.target:
        table.add_column(Text(name), justify="right")
    table.add_column("mean distance" if grouped else "distance", justify="right")
    if grouped:
        table.add_column("share of the group", justify="right")
    first = "group mean" if grouped else "target"
    table.add_row(first, *[f"{v:.2f}" for v in result.target.values()], "", *([""] if grouped else []), style="bold")
    for i, pred in enumerate(result.predictions):
        mark = " *" if i == result.selected_index else ""
        table.add_row(
            f"response {i}{mark}",
            *[f"{pred[a]:.2f}" for a in result.target],
            f"{result.distances[i]:.3f}" if result.distances else "",
            *([f"{result.shares[i]:.0%}"] if grouped else []),
        )
    return table
