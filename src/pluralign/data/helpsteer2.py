"""Build the steerable HelpSteer2 benchmark from ``nvidia/HelpSteer2`` as the paper did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pluralign.attributes import HELPSTEER2
from pluralign.data.benchmark import save_probes
from pluralign.data.split import stratified_split
from pluralign.errors import InputError
from pluralign.probes import Probe

LIKERT_MAX = 4


def pair_rows(rows: Sequence[Mapping[str, Any]]) -> list[Probe]:
    """Consecutive rows sharing a prompt form one pair; labels 0..4 become 0..1.

    The reference walks ``range(0, len(rows) - 2, 2)``, which drops the last pair of each
    split; we keep that so a rebuild matches the published files, and skip (rather than
    mis-pair) any two consecutive rows whose prompts differ.
    """
    probes = []
    for i in range(0, len(rows) - 2, 2):
        first, second = rows[i], rows[i + 1]
        if first["prompt"] != second["prompt"]:
            continue
        labels = [{a: float(row[a]) / LIKERT_MAX for a in HELPSTEER2} for row in (first, second)]
        probes.append(Probe(prompt=first["prompt"], responses=[first["response"], second["response"]], labels=labels))
    return probes


def build_helpsteer2(out_dir: str | Path, dataset: str = "nvidia/HelpSteer2") -> tuple[int, int]:
    """Download (needs internet and ``datasets``), pair, split, write train/eval.json."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise InputError("building HelpSteer2 needs the 'datasets' package: pip install 'pluralign[data]'") from None
    try:
        ds = load_dataset(dataset)
    except Exception as exc:  # network, auth, missing dataset: all reported in one line
        raise InputError(f"could not load {dataset}: {' '.join(str(exc).split())}") from None
    probes = pair_rows(list(ds["train"])) + pair_rows(list(ds["validation"]))
    train, evals = stratified_split(probes, HELPSTEER2, levels=5)
    out = Path(out_dir)
    save_probes(out / "train.json", train)
    save_probes(out / "eval.json", evals)
    return len(train), len(evals)
