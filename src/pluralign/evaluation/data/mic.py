"""Build the MIC benchmark from a user's ``MIC.csv`` (its terms forbid redistribution).

Labels and the split follow the paper's code exactly. The reasonings say the same as the
paper's ("The response agrees with the care rule of thumb: ..."), except that the paper's
end with a stray trailing space; that quirk is deliberately not copied, so the text of a
rebuilt train.json differs from the paper's by that space only.
"""

from __future__ import annotations

import ast
import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pluralign.choice.attributes import MIC
from pluralign.choice.probes import Probe, save_probes
from pluralign.evaluation.data.split import stratified_split
from pluralign.support.errors import InputError
from pluralign.support.files import open_read, replaceable_in

REQUIRED_COLUMNS = ("Q", "A", "rot", "moral-vector", "A_agrees")
AGREEMENT = {0: -1.0, 1: 0.0, 2: 1.0}
ROWS_PER_ANSWER = 3


@dataclass
class _Row:
    line: int
    question: str
    answer: str
    rot: str
    vector: list[float]
    agrees: int | None


@dataclass
class MicStats:
    rows: int = 0
    questions: int = 0
    kept_questions: int = 0
    dropped_single_answer: int = 0
    dropped_missing_agreement: int = 0
    notes: list[str] = field(default_factory=list)


MAX_VECTOR_CHARS = 200


def _parse_vector(text: str, line: int) -> list[float]:
    if len(text) > MAX_VECTOR_CHARS:
        raise InputError(f"line {line}: moral-vector is {len(text)} characters long, not a list of {len(MIC)} numbers")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise InputError(f"line {line}: moral-vector {text!r} is not a list of numbers") from None
    if not isinstance(value, (list, tuple)) or len(value) != len(MIC):
        raise InputError(f"line {line}: moral-vector must list {len(MIC)} numbers ({', '.join(MIC)})")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise InputError(f"line {line}: moral-vector {text!r} holds something other than numbers")
    if not all(0.0 <= v <= 1.0 for v in value):
        raise InputError(f"line {line}: moral-vector {text!r} has a value outside [0, 1]")
    return [float(v) for v in value]


def _parse_agrees(text: str, line: int) -> int | None:
    text = text.strip()
    if text == "" or text.lower() == "nan":
        return None
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"line {line}: A_agrees {text!r} is not 0, 1 or 2") from None
    if math.isnan(number):
        return None
    if number not in (0.0, 1.0, 2.0):
        raise InputError(f"line {line}: A_agrees {text!r} is not 0, 1 or 2")
    return int(number)


def read_mic_csv(path: str | Path) -> list[_Row]:
    path = Path(path)
    # a byte-order mark is not part of a name
    handle = io.TextIOWrapper(open_read(path, "MIC file"), newline="", encoding="utf-8-sig")
    rows: list[_Row] = []
    with handle:
        reader = csv.DictReader(handle)
        try:
            fieldnames = reader.fieldnames
        except UnicodeDecodeError:
            raise InputError(f"{path} is not UTF-8 text") from None
        except csv.Error as exc:
            raise InputError(f"{path}: line 1: {exc}") from None
        if fieldnames is None:
            raise InputError(f"{path} is empty")
        missing = [c for c in REQUIRED_COLUMNS if c not in fieldnames]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
        twice = sorted({c for c in fieldnames if c in REQUIRED_COLUMNS and fieldnames.count(c) > 1})
        if twice:
            raise InputError(f"{path}: column(s) {', '.join(twice)} appear more than once; which one is meant?")
        try:
            for record in reader:
                line = reader.line_num
                if None in record or any(record.get(c) is None for c in REQUIRED_COLUMNS):
                    raise InputError(f"{path}: line {line}: wrong number of fields")
                question, answer = record["Q"], record["A"]
                if not question.strip() or not answer.strip():
                    raise InputError(f"{path}: line {line}: empty question or answer")
                try:
                    rows.append(
                        _Row(
                            line=line,
                            question=question,
                            answer=answer,
                            rot=record["rot"],
                            vector=_parse_vector(record["moral-vector"], line),
                            agrees=_parse_agrees(record["A_agrees"], line),
                        )
                    )
                except InputError as exc:
                    raise InputError(f"{path}: {exc}") from None
        except csv.Error as exc:  # raised while reading the next record
            raise InputError(f"{path}: line {reader.line_num + 1}: {exc}") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: line {reader.line_num + 1}: not UTF-8 text") from None
        except MemoryError:
            raise InputError(f"{path}: line {reader.line_num}: a record too large to read") from None
    return rows


def _label(rows: list[_Row]) -> dict[str, float]:
    totals = [0.0] * len(MIC)
    for row in rows[:ROWS_PER_ANSWER]:
        sign = AGREEMENT[row.agrees if row.agrees is not None else 1]
        for i, v in enumerate(row.vector):
            totals[i] += sign * v
    return {m: round((t + ROWS_PER_ANSWER) / (2 * ROWS_PER_ANSWER), 2) for m, t in zip(MIC, totals, strict=True)}


def _reasoning(rows: list[_Row]) -> dict[str, str]:
    out = {}
    for i, moral in enumerate(MIC):
        parts = []
        for row in rows[:ROWS_PER_ANSWER]:
            if row.vector[i] == 1 and row.agrees in (0, 2):
                verb = "agrees" if row.agrees == 2 else "disagrees"
                parts.append(f"The response {verb} with the {moral} rule of thumb: {row.rot}")
        out[moral] = " ".join(parts) if parts else f"The response is neutral with respect to {moral}."
    return out


def probes_from_rows(rows: Iterable[_Row], stats: MicStats | None = None) -> list[Probe]:
    """Questions with 2+ distinct answers and no missing agreement, in sorted-question order
    (the reference groups with pandas, which sorts); answers in order of appearance."""
    stats = stats if stats is not None else MicStats()
    by_question: dict[str, list[_Row]] = {}
    for row in rows:
        stats.rows += 1
        by_question.setdefault(row.question, []).append(row)
    stats.questions = len(by_question)
    probes = []
    for question in sorted(by_question):
        group = by_question[question]
        answers: dict[str, list[_Row]] = {}
        for row in group:
            answers.setdefault(row.answer, []).append(row)
        if len(answers) < 2:
            stats.dropped_single_answer += 1
            continue
        if any(row.agrees is None for row in group):
            stats.dropped_missing_agreement += 1
            continue
        probes.append(
            Probe(
                question=question,
                responses=list(answers),
                labels=[_label(a) for a in answers.values()],
                reasonings=[_reasoning(a) for a in answers.values()],
            )
        )
    stats.kept_questions = len(probes)
    return probes


def build_mic(csv_path: str | Path, out_dir: str | Path, split: bool = True) -> MicStats:
    stats = MicStats()
    out = Path(out_dir)
    replaceable_in(out, ("train.json", "eval.json") if split else ("all.json",))  # before either is written
    probes = probes_from_rows(read_mic_csv(csv_path), stats)
    if not probes:
        raise InputError(f"{csv_path}: no question has two or more answers with agreement labels")
    if split:
        train, evals = stratified_split(probes, MIC, levels=7)
        if not evals:
            raise InputError(
                f"{csv_path}: too few items for the stratified split (some attribute level "
                "never occurs); use --no-split"
            )
        save_probes(out / "train.json", train)
        save_probes(out / "eval.json", evals)
        stats.notes.append(f"train {len(train)}, eval {len(evals)}")
    else:
        save_probes(out / "all.json", probes)
        stats.notes.append(f"all {len(probes)}")
    return stats
