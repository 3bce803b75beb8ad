"""The run folder: one module owns its format, for writing (evaluate) and reading (score,
report, the service, benchmarks).

::

    run.json            what was asked (method config, benchmark, seed): a resume must match
    assessments.jsonl   one line per assessed item (or failed item), appended and fsynced; a study
                        committed packed keeps assessments.jsonl.gz (read first) beside it;
                        0.3's judgements.jsonl(.gz) is read before it, and never written again
    calls.jsonl         every raw model answer, when calls are logged
    decisions.jsonl     derived: one line per item and target (a person or a group)
    group_decisions.jsonl  0.2's group decisions (read, no longer written: decisions.jsonl holds both)
    results.json        derived: metrics per target and the run's cost
    input_output/       derived: the reference implementation's format, one file per target
    .lock               held while a process writes the run

Readers never change a file (a corrupt line is skipped with a warning); the writer holds
``.lock`` so two processes never judge the same run at once. Nothing under the folder is read
or written through a link, a pipe or a device (:func:`pluralign.support.folders.open_under`): a run folder
may come from an archive or a clone. ``--overwrite`` removes only what a run writes: its own
file names, and the files of ``input_output/`` that hold the reference format.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from pluralign.choice.probes import Probe
from pluralign.choice.targets import AlignmentTarget, Target
from pluralign.evaluation.metrics import Decision, TargetResult, results_payload
from pluralign.evaluation.reference import input_output_records, is_input_output
from pluralign.prediction.methods.base import Assessment
from pluralign.support.errors import InputError, RunLockedError, one_line, validation_message
from pluralign.support.files import exclusive, output_folder
from pluralign.support.folders import (
    exists_under,
    list_under,
    read_bytes_under,
    read_json_under,
    remove_under,
    write_bytes_under,
    write_json_under,
)
from pluralign.support.jsonl import append_jsonl, gunzip_jsonl, read_jsonl, repair_torn_tail
from pluralign.support.names import file_stem
from pluralign.support.strict import validate_each

RUN_FILE = "run.json"
ASSESSMENTS = "assessments.jsonl"
OLD_ASSESSMENTS = "judgements.jsonl"
"""0.3's name of the assessments log: read (before the new one) until 0.4, never written."""
DECISIONS = "decisions.jsonl"
GROUP_DECISIONS = "group_decisions.jsonl"
RESULTS = "results.json"
CALLS = "calls.jsonl"
INPUT_OUTPUT = "input_output"
LOCK = ".lock"
PACKED = ".gz"


class AssessmentRecord(BaseModel):
    """One line of assessments.jsonl: an item's assessment for a key (``*`` = every target,
    or a target's name for target-dependent methods), or the error that stopped it."""

    item: int
    key: str
    assessment: Assessment | None = Field(default=None, validation_alias=AliasChoices("assessment", "judgement"))
    error: str | None = None


class RunResults(BaseModel):
    """results.json: metrics per target and what the run cost (other fields kept as they are)."""

    model_config = ConfigDict(extra="allow")

    targets: list[TargetResult]
    mean_accuracy: float | None = None
    target_values: dict[str, Any] = {}
    method: Any = None
    n_items: int | None = None
    metric: str = "auto"
    ties: str = "exact"
    n_failed: int = 0

    @model_validator(mode="before")
    @classmethod
    def _groups_of_0_2(cls, data: Any) -> Any:
        """A 0.2 run kept its groups apart ("groups", "group_values"): read them as the targets they are."""
        if not isinstance(data, dict) or not (data.get("groups") or data.get("group_values")):
            return data
        data = dict(data)
        old = [g for g in data.pop("groups", None) or [] if isinstance(g, dict)]
        data["targets"] = [
            *(data.get("targets") or []),
            *(
                {
                    "name": g.get("name"),
                    "target": g.get("mean_values") or {},
                    "accuracy": g.get("matched_share"),
                    "accuracy_ci95": g.get("matched_share_ci95"),
                    "n_scored": g.get("n_scored", 0),
                    "n_skipped": g.get("n_skipped", 0),
                    "n_correct": 0,
                    "weighted_score": None,
                    "n_failed": g.get("n_failed", 0),
                    "members": g.get("members"),
                    "best_share": g.get("best_share"),
                }
                for g in old
            ),
        ]
        data["target_values"] = {**(data.get("target_values") or {}), **(data.pop("group_values", None) or {})}
        return data


def is_run(path: Path) -> bool:
    return (path / RUN_FILE).is_file()


class RunDir:
    """Reads and writes one evaluation run folder.

    ``root`` is the folder the user named that holds the run (the run itself by default; the
    run browser's ``--runs``): nothing below it is reached through a link."""

    def __init__(self, path: str | Path, root: str | Path | None = None, limit: int | None = None) -> None:
        self.path = Path(path)
        self.root = Path(root) if root is not None else self.path
        self.limit = limit
        """Largest file this reader reads (the run browser's --max-run-file-bytes); None: any."""

    def _rel(self, name: str) -> Path:
        return self.path.relative_to(self.root) / name if self.path != self.root else Path(name)

    def _read_json(self, name: str, what: str) -> Any:
        return read_json_under(self.root, self._rel(name), what, self.limit)

    def _read_jsonl(self, name: str, what: str) -> list[Any]:
        """A log's records: its packed part (``name.gz``, see :meth:`pack`) first, then what was
        appended since."""
        packed = []
        if exists_under(self.root, self._rel(name + PACKED)):
            data = read_bytes_under(self.root, self._rel(name + PACKED), what, self.limit)
            packed = gunzip_jsonl(data, self.path / (name + PACKED), what, self.limit)
        plain = read_jsonl(self._rel(name), what, root=self.root, limit=self.limit) if self._plain(name) else []
        return packed + plain

    def _plain(self, name: str) -> bool:
        return exists_under(self.root, self._rel(name))

    def _has(self, name: str) -> bool:
        return self._plain(name) or exists_under(self.root, self._rel(name + PACKED))

    def pack(self) -> list[str]:
        """Compress the run's logs (assessments, decisions) into ``.jsonl.gz`` beside them, for
        committing a study: readers read both, a resume appends to a new plain file, and a
        rewrite of the decisions drops the packed copy. Returns the files packed."""
        packed = []
        for name in (OLD_ASSESSMENTS, ASSESSMENTS, DECISIONS):
            if not self._plain(name):
                continue
            old = (
                read_bytes_under(self.root, self._rel(name + PACKED))
                if exists_under(self.root, self._rel(name + PACKED))
                else b""
            )
            plain = read_bytes_under(self.root, self._rel(name))
            whole = gzip.decompress(old) + plain if old else plain
            write_bytes_under(self.root, self._rel(name + PACKED), gzip.compress(whole, mtime=0))
            remove_under(self.root, self._rel(name))
            packed.append(name + PACKED)
        return packed

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def lock(self) -> Iterator[None]:
        """Held while judging: a second process on the same folder gets a clear error."""
        self.path.mkdir(parents=True, exist_ok=True)
        busy = RunLockedError(
            f"{self.path} is being written by another pluralign process; wait for it or use another --out"
        )
        with exclusive(self.path / LOCK, busy) as handle:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield

    def check_writable(self, overwrite: bool) -> None:
        output_folder(self.path)
        if self.path.is_dir() and not is_run(self.path) and not overwrite:
            foreign = [n for n in (RESULTS, DECISIONS, ASSESSMENTS, OLD_ASSESSMENTS) if (self.path / n).exists()]
            if foreign:
                raise InputError(
                    f"--out {self.path} holds {foreign[0]} but is not a pluralign run; "
                    "use another --out or pass --overwrite"
                )

    def prepare(self, identity: dict[str, Any], overwrite: bool, earlier: dict[str, Any] | None = None) -> None:
        """Start or resume: a resumed run must have been asked the same way (``identity``, or
        ``earlier``, the same question as an older version recorded it; the run file is then
        rewritten in the current form)."""
        self.check_writable(overwrite)
        self.path.mkdir(parents=True, exist_ok=True)
        run_file = self.path / RUN_FILE
        if run_file.exists() and not overwrite:
            try:
                previous = self._read_json(RUN_FILE, "run file")
            except InputError:
                raise InputError(f"{run_file} is corrupted; pass --overwrite to start again") from None
            if not isinstance(previous, dict) or previous.get("identity") not in (identity, earlier or identity):
                raise InputError(
                    f"{self.path} holds a run with another method, benchmark or seed; "
                    "use another --out or pass --overwrite"
                )
        if overwrite:  # everything a run writes, so no stale record outlives it; nothing else
            for name in (ASSESSMENTS, OLD_ASSESSMENTS, DECISIONS, GROUP_DECISIONS, RESULTS, CALLS):
                remove_under(self.root, self._rel(name))
                remove_under(self.root, self._rel(name + PACKED))
            self._remove_input_output()
        write_json_under(self.root, self._rel(RUN_FILE), {"identity": identity})
        repair_torn_tail(self.path / ASSESSMENTS)

    def _remove_input_output(self) -> None:
        """The reference-format files of ``input_output/`` (a note a person left there stays),
        then the folder if that leaves it empty."""
        folder = self._rel(INPUT_OUTPUT)
        for name in list_under(self.root, folder):
            if not name.endswith(".json"):
                continue
            try:
                ours = is_input_output(read_json_under(self.root, folder / name, "input_output file"))
            except InputError:
                ours = False
            if ours:
                remove_under(self.root, folder / name)
        try:
            os.rmdir(self.path / INPUT_OUTPUT)
        except OSError:
            pass

    def save_assessment(self, item: int, key: str, assessment: Assessment) -> None:
        append_jsonl(self.path / ASSESSMENTS, AssessmentRecord(item=item, key=key, assessment=assessment).model_dump())

    def save_failure(self, item: int, key: str, error: str) -> None:
        append_jsonl(self.path / ASSESSMENTS, AssessmentRecord(item=item, key=key, error=error).model_dump())

    def write_outputs(
        self,
        probes: Sequence[Probe],
        targets: Sequence[Target],
        decisions: dict[str, list[Decision]],
        results: list[TargetResult],
        extra: dict[str, Any],
    ) -> None:
        """decisions.jsonl and results.json for every target, person or group; the reference
        format (input_output/) for each person, as the paper's scorer reads it."""
        lines = [d.line() for t in targets for d in decisions[t.name]]
        write_bytes_under(self.root, self._rel(DECISIONS), "".join(line + "\n" for line in lines).encode())
        remove_under(self.root, self._rel(DECISIONS + PACKED))  # the decisions are all in the new file
        remove_under(self.root, self._rel(GROUP_DECISIONS))  # 0.2's separate file: now in decisions.jsonl
        payload = results_payload(results, extra)
        payload["target_values"] = {t.name: t.to_file_dict() for t in targets}
        write_json_under(self.root, self._rel(RESULTS), payload)
        for target in targets:
            if not isinstance(target, AlignmentTarget):
                continue
            records = input_output_records(probes, decisions[target.name])
            write_json_under(self.root, self._rel(self.input_output_name(target.name)), records)

    @staticmethod
    def input_output_name(target: str) -> str:
        """A target's reference-format file inside the run: a target's name is a label, so the
        file name is derived from it (:func:`pluralign.support.names.file_stem`) and stays in the folder."""
        return f"{INPUT_OUTPUT}/{file_stem(target)}.json"

    def input_output_path(self, target: str) -> Path:
        return self.path / self.input_output_name(target)

    @property
    def results_path(self) -> Path:
        return self.path / RESULTS

    @property
    def decisions_path(self) -> Path:
        return self.path / DECISIONS

    @property
    def assessments_path(self) -> Path:
        return self.path / ASSESSMENTS

    @property
    def calls_path(self) -> Path:
        """Where the judge's calls are logged while the run judges."""
        return self.path / CALLS

    # -- reading -------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What the run was asked (method, benchmark by its content, seed); empty if unknown."""
        if not self._has(RUN_FILE):
            return {}
        raw = self._read_json(RUN_FILE, "run file")
        identity = raw.get("identity") if isinstance(raw, dict) else None
        return identity if isinstance(identity, dict) else {}

    def finished(self) -> bool:
        """A run that has results to show (the service's run browser lists only these)."""
        return self._has(RESULTS)

    def records(self) -> list[AssessmentRecord]:
        out = []
        for raw in [r for name in (OLD_ASSESSMENTS, ASSESSMENTS) for r in self._read_jsonl(name, "assessments")]:
            try:
                out.append(AssessmentRecord.model_validate(raw))
            except ValidationError:
                continue
        return out

    def assessments(self) -> tuple[dict[tuple[int, str], Assessment], dict[tuple[int, str], str]]:
        """What is done, and what failed last time (a later success clears a failure)."""
        done: dict[tuple[int, str], Assessment] = {}
        failed: dict[tuple[int, str], str] = {}
        for record in self.records():
            key = (record.item, record.key)
            if record.assessment is not None:
                done[key] = done[key].merged(record.assessment) if key in done else record.assessment
                failed.pop(key, None)
            elif record.error is not None and key not in done:
                failed[key] = record.error
        return done, failed

    def finished_items(self) -> int:
        return len({item for item, _ in self.assessments()[0]})

    def results(self) -> RunResults:
        path = self.path / RESULTS
        if not self._has(RESULTS):
            raise InputError(f"{self.path} has no {RESULTS}; is it a finished run?")
        raw = self._read_json(RESULTS, "results file")
        if not isinstance(raw, dict):
            raise InputError(f"{path}: expected a JSON object, found a {type(raw).__name__}")
        try:
            return RunResults.model_validate(raw)
        except ValidationError as exc:
            raise InputError(f"{path}: {validation_message(exc)}") from None

    def decisions(self) -> list[Decision]:
        """Every decision, people's and groups' (a 0.2 run's group_decisions.jsonl read too)."""
        path = self.path / DECISIONS
        if not self._has(DECISIONS):
            raise InputError(f"{self.path} has no {DECISIONS}; is it a finished run?")
        out = validate_each(Decision, self._read_jsonl(DECISIONS, "decisions"), lambda i: f"{path}: record {i + 1}: ")
        if self._has(GROUP_DECISIONS):
            older = self.path / GROUP_DECISIONS
            for i, raw in enumerate(self._read_jsonl(GROUP_DECISIONS, "group decisions")):
                try:
                    out.append(Decision.from_group_line(raw))
                except (KeyError, TypeError, ValueError, ValidationError) as exc:
                    raise InputError(f"{older}: record {i + 1}: {one_line(exc, 200)}") from None
        return out

    def probes(self, target: str) -> dict[int, Any]:
        """Eval item -> its input, as written in the reference format for one target."""
        path = self.input_output_path(target)
        if not self._has(self.input_output_name(target)):
            return {}
        raw = self._read_json(self.input_output_name(target), "input_output file")
        if not isinstance(raw, list):
            raise InputError(f"{path}: expected a list of records")
        out: dict[int, Any] = {}
        for position, record in enumerate(raw):
            if isinstance(record, dict):
                item = record.get("item", position)
                out[item if isinstance(item, int) else position] = record.get("input")
        return out
