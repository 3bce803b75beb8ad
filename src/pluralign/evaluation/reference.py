"""The reference implementation's ``input_output.json``: a list of
``{"input": probe, "output": {"selected_response_index", "reasoning", "choice_info"}}``
(pluralign adds ``"item"``, the eval item's index, which the reference ignores).

pluralign writes one per target in every run, and scores such files from the paper's own
code with the paper's rules (exact ties; predictions, when present, are re-selected).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pluralign.choice.probes import Probe
from pluralign.choice.selection import Metric, TieRule, select
from pluralign.choice.targets import Target
from pluralign.evaluation.metrics import Decision, TargetResult, grade_item, summarize
from pluralign.support.errors import InputError, validation_message
from pluralign.support.files import read_json, write_json_atomic


def input_output_records(probes: Sequence[Probe], decisions: Sequence[Decision]) -> list[dict[str, Any]]:
    """One target's decisions in the reference implementation's ``input_output.json`` form."""
    return [
        {
            "item": d.item,
            "input": probes[d.item].model_dump(exclude_none=True),
            "output": {
                "selected_response_index": d.chosen,
                "reasoning": d.reasoning,
                "choice_info": {"predictions": d.predictions} if d.predictions is not None else {},
            },
        }
        for d in decisions
        if d.failed is None
    ]


def write_input_output(path: Path, probes: Sequence[Probe], decisions: Sequence[Decision]) -> None:
    write_json_atomic(path, input_output_records(probes, decisions))


def is_input_output(data: Any) -> bool:
    """Whether ``data`` is what :func:`input_output_records` writes: the proof that lets a run's
    ``--overwrite`` remove a file of ``input_output/`` (anything else there is left alone)."""
    return isinstance(data, list) and all(
        isinstance(r, dict) and set(r) == {"item", "input", "output"} and isinstance(r["output"], dict) for r in data
    )


def read_input_output(path: str | Path) -> list[Any]:
    records = read_json(path, "input_output file")
    if not isinstance(records, list) or not records:
        raise InputError(f"{path}: expected a non-empty list of {{input, output}} records")
    return records


def input_output_attributes(path: str | Path) -> list[str]:
    """Attribute names labelled in an input_output.json (for the high/low targets)."""
    try:
        return list(read_input_output(path)[0]["input"]["labels"][0])
    except (KeyError, TypeError, IndexError):
        raise InputError(f"{path}: first record has no input.labels") from None


def score_input_output(
    path: str | Path,
    target: Target,
    metric: Metric | str = Metric.auto,
    ties: TieRule | str = TieRule.exact,
) -> TargetResult:
    """Score the reference implementation's ``input_output.json`` against a target.

    Where a record has predictions the choice is re-selected from them (as the paper's
    scorer does), so ``n_choice_ties`` counts the items whose predictions tie."""
    path = Path(path)
    decisions = []
    for i, record in enumerate(read_input_output(path)):
        try:
            probe = Probe.model_validate(record["input"])
            output = record["output"]
            preds = (output.get("choice_info") or {}).get("predictions")
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: record {i} lacks {exc}") from None
        except ValidationError as exc:
            raise InputError(f"{path}: record {i}: input.{validation_message(exc)}") from None
        if probe.labels is None:
            raise InputError(f"{path}: record {i} has no labels")
        tied: list[int] = []
        if preds:
            choice = select(preds, target, metric, ties=ties)
            chosen, tied = choice.index, choice.tied
        else:
            raw = output.get("selected_response_index")
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise InputError(f"{path}: record {i}: selected_response_index {raw!r} is not an index")
            chosen = raw
        decisions.append(grade_item(i, probe.labels, target, chosen, metric, predictions=preds, tied=tied, ties=ties))
    return summarize(decisions, target, metric)
