"""``pluralign profile fit`` and ``profile next``: learn a target from choices, ask the next question."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from pluralign.cli.common import (
    AttributesOpt,
    registry_from,
    say,
    with_settings_options,
)
from pluralign.prediction.methods.registry import DEFAULT_METHOD
from pluralign.settings import make_settings
from pluralign.support.errors import InputError

profile_app = typer.Typer(no_args_is_help=True, help="Learn a person's profile from their choices.")


def register(app: typer.Typer) -> None:
    app.add_typer(profile_app, name="profile")


def _attributes(names: str | None, records: list[Any], registry: Any) -> list[Any]:
    from pluralign.people.profile import attributes_of

    if names:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
    else:
        wanted = attributes_of(records)
        if not wanted:
            raise InputError("no record has predictions: name the attributes with --attributes")
    return list(registry.require(wanted, "--attributes" if names else None))


AttributeNamesOpt = Annotated[str | None, typer.Option("--attributes", help="Comma-separated attributes.")]
PredictingMethodOpt = Annotated[
    str, typer.Option(help="Method that predicts attribute values for lines without predictions.")
]


def _predictor(method: str, options: dict[str, Any]) -> Any:
    """The method's settings, checked now: an option it would not read is refused even when
    every line already has predictions."""
    from pluralign.prediction.methods.registry import method_spec
    from pluralign.settings import check_applicable

    settings = make_settings(options)
    check_applicable(method_spec(method), settings)
    return settings


def _complete(records: list[Any], attributes: list[Any], method: str, settings: Any) -> list[Any]:
    """Predict for the records that lack predictions, loading the method only if one does."""
    from pluralign.api import Chooser, fill_predictions
    from pluralign.people.profile import check_predictions

    names = [a.name for a in attributes]
    check_predictions([r for r in records if r.predictions is not None], names)
    if all(r.predictions is not None for r in records):
        return records
    chooser = Chooser(method, settings)
    try:
        return fill_predictions(records, chooser, names)
    finally:
        chooser.close()


@profile_app.command("fit")
@with_settings_options()
def fit_cmd(
    choices: Annotated[Path, typer.Option(help="JSON Lines: id, question, responses, chosen [, predictions].")],
    out: Annotated[Path, typer.Option(help="Target file to write (accepted by --target everywhere).")],
    attributes: AttributeNamesOpt = None,
    plain: Annotated[bool, typer.Option(help="Write the plain {attribute: value} form, without weights.")] = False,
    method: PredictingMethodOpt = DEFAULT_METHOD,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Fit a target to past choices (probabilistic: choices may be noisy)."""
    from pluralign.people.profile import fit_profile, read_choices
    from pluralign.support.files import write_json_atomic

    settings = _predictor(method, options or {})
    registry = registry_from(attributes_file)
    records = read_choices(choices)
    if not records:
        raise InputError(f"{choices} holds no choices")
    attrs = _attributes(attributes, records, registry)
    records = _complete(records, attrs, method, settings)
    started = time.perf_counter()
    fitted = fit_profile(attrs, records)
    seconds = time.perf_counter() - started
    write_json_atomic(out, fitted.file_dict(plain))
    if as_json:
        print(json.dumps(fitted.model_dump(), indent=2))
        return
    say(
        f"wrote {out}: the profile explains {fitted.n_explained} of {fitted.n_choices} choices (fit in {seconds:.2f} s)"
    )
    for a in fitted.attributes:
        value = f"{a.value:.2f} ± {a.value_sd:.2f}" if a.value is not None and a.value_sd is not None else "-"
        say(f"  {a.attribute:12} cares with probability {a.weight:.2f}; value {value}")


@profile_app.command("next", short_help="The question to ask next: the most informative pool item.")
@with_settings_options()
def next_cmd(
    choices: Annotated[Path, typer.Option(help="The choices so far (JSON Lines; may be empty).")],
    pool: Annotated[Path, typer.Option(help="Candidate questions (JSON Lines, same format without chosen).")],
    attributes: AttributeNamesOpt = None,
    method: PredictingMethodOpt = DEFAULT_METHOD,
    attributes_file: AttributesOpt = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Print {"id", "index", "expected_agreement", "information_bits"} of the pool item whose
    answer is expected to make the fit choose most like the person."""
    from pluralign.people.profile import read_choices
    from pluralign.people.questions import next_question

    settings = _predictor(method, options or {})
    registry = registry_from(attributes_file)
    answered = read_choices(choices)
    candidates = read_choices(pool, need_chosen=False, what="pool file")
    if not candidates:
        raise InputError(f"{pool} holds no questions")
    attrs = _attributes(attributes, answered + candidates, registry)
    answered = _complete(answered, attrs, method, settings)
    asked = {r.id for r in answered}
    unasked = _complete([r for r in candidates if r.id not in asked], attrs, method, settings)
    best = next_question(attrs, answered, unasked)
    index = next(i for i, r in enumerate(candidates) if r.id == best.id)
    print(json.dumps({**best.model_dump(), "index": index}))
