"""Build the steerable HelpSteer2 benchmark from ``nvidia/HelpSteer2`` as the paper did.

The paper pairs rows ``(i, i+1)`` for even ``i`` up to ``len(rows) - 2`` without looking at
the prompts, so after a prompt with 1 or 3 responses every later pair joins two different
prompts until the parity comes back. Here rows are grouped by (consecutive) prompt: a pair
the paper formed from two rows of one prompt is kept as it is; a prompt whose two rows the
paper split across pairs is paired within itself; the rows left over (a prompt's odd row
out, a prompt with one response) and the last pair the paper's loop never reached are
dropped, and everything dropped is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pluralign.choice.attributes import HELPSTEER2
from pluralign.choice.probes import Probe, save_probes
from pluralign.evaluation.data.split import stratified_split
from pluralign.support.errors import InputError
from pluralign.support.files import replaceable_in

LIKERT_MAX = 4


@dataclass
class PairingReport:
    rows: int = 0
    pairs: int = 0
    paper_pairs_kept: int = 0
    recovered_pairs: int = 0
    dropped_single_rows: int = 0
    dropped_extra_rows: int = 0
    dropped_last_pair: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.rows} rows -> {self.pairs} pairs ({self.paper_pairs_kept} as the paper paired them, "
            f"{self.recovered_pairs} re-paired within their prompt); dropped {self.dropped_single_rows} prompts "
            f"with one response, {self.dropped_extra_rows} odd rows of prompts with 3+ responses, and "
            f"{self.dropped_last_pair} final pair(s) the paper's loop never reached"
        )


def _probe(first: Mapping[str, Any], second: Mapping[str, Any]) -> Probe:
    labels = [{a: float(row[a]) / LIKERT_MAX for a in HELPSTEER2} for row in (first, second)]
    return Probe(question=first["prompt"], responses=[first["response"], second["response"]], labels=labels)


def pair_rows(rows: Sequence[Mapping[str, Any]], report: PairingReport | None = None) -> list[Probe]:
    """Pairs of responses to one prompt, labels 0..4 mapped to 0..1 (see the module docstring)."""
    report = report if report is not None else PairingReport()
    report.rows += len(rows)
    reach = len(rows) - 2  # the paper's range(0, len(rows) - 2, 2) never starts a pair here or later
    probes: list[Probe] = []
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and rows[end]["prompt"] == rows[start]["prompt"]:
            end += 1
        size = end - start
        if size == 1:
            report.dropped_single_rows += 1
        paper = [k for k in range(start, end - 1) if k % 2 == 0]  # the paper's pairs inside this prompt
        starts = paper or list(range(start, end - 1, 2))
        used = 0
        for k in starts:
            if k >= reach:
                report.dropped_last_pair += 1
                continue
            probes.append(_probe(rows[k], rows[k + 1]))
            used += 2
            if paper:
                report.paper_pairs_kept += 1
            else:
                report.recovered_pairs += 1
        if size > 1:
            report.dropped_extra_rows += size - used - 2 * sum(1 for k in starts if k >= reach)
        start = end
    report.pairs += len(probes)
    return probes


def build_helpsteer2(out_dir: str | Path, dataset: str = "nvidia/HelpSteer2") -> tuple[int, int, PairingReport]:
    """Download (needs internet and ``datasets``), pair, split, write train/eval.json."""
    out = Path(out_dir)
    replaceable_in(out, ("train.json", "eval.json"))  # before the download, and before either is written
    try:
        from datasets import load_dataset
    except ImportError:
        raise InputError("building HelpSteer2 needs the 'datasets' package: pip install 'pluralign[data]'") from None
    try:
        ds = load_dataset(dataset)
    except Exception as exc:  # network, auth, missing dataset: all reported in one line
        raise InputError(f"could not load {dataset}: {' '.join(str(exc).split())}") from None
    report = PairingReport()
    probes = pair_rows(list(ds["train"]), report) + pair_rows(list(ds["validation"]), report)
    train, evals = stratified_split(probes, HELPSTEER2, levels=5)
    save_probes(out / "train.json", train)
    save_probes(out / "eval.json", evals)
    return len(train), len(evals), report
