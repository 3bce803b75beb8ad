"""A benchmark directory holds ``train.json`` (optional, for few-shot) and ``eval.json``."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from pluralign.choice.probes import Probe, load_probes
from pluralign.support.errors import InputError

BENCHMARK_ENV = "PLURALIGN_BENCHMARK"


def fingerprint_of(evals: list[Probe], train: list[Probe] | None) -> str:
    """sha256 of what the items say (not of how the file is formatted)."""
    digest = hashlib.sha256()
    for part in (evals, train or []):
        items = [p.model_dump(mode="json", exclude_none=True) for p in part]
        digest.update(json.dumps(items, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\0")
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class Benchmark:
    path: Path
    eval: list[Probe]
    train: list[Probe] | None
    fingerprint: str = ""
    """What the benchmark holds, not where it lies: a run resumes after the folder moves or on
    another machine, and never over other items that sit at the same path. A subset of a loaded
    benchmark (the first n items by some order) keeps the fingerprint of the files it came from,
    so that a larger subset resumes the same run."""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", fingerprint_of(self.eval, self.train))

    def subset(self, items: list[Probe]) -> Benchmark:
        """These eval items (some of this benchmark's, in some order), with its train set and
        fingerprint: a run over a larger subset resumes the same run."""
        return replace(self, eval=items)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def attributes(self) -> list[str]:
        """Every attribute labelled on any eval response, in first-seen order (a response
        that lacks one is an error when a target asks for it, never silently dropped)."""
        names: list[str] = []
        for probe in self.eval:
            for label in probe.labels or []:
                names.extend(n for n in label if n not in names)
        return names


def resolve_benchmark_path(path: str | Path | None) -> Path:
    if path is None:
        env = os.environ.get(BENCHMARK_ENV, "").strip()
        if not env:
            raise InputError(f"no benchmark given: pass --benchmark DIR or set {BENCHMARK_ENV}")
        path = env
    return Path(path)


def load_benchmark(path: str | Path | None = None) -> Benchmark:
    root = resolve_benchmark_path(path)
    if root.is_file():
        evals = load_probes(root)
        if not evals:
            raise InputError(f"{root} holds no items")
        return Benchmark(path=root.parent, eval=evals, train=None)
    if not root.is_dir():
        raise InputError(f"benchmark directory {root} does not exist")
    eval_file = root / "eval.json"
    if not eval_file.exists():
        all_file = root / "all.json"
        if not all_file.exists():
            raise InputError(f"benchmark directory {root} has no eval.json")
        eval_file = all_file
    train_file = root / "train.json"
    train = load_probes(train_file) if train_file.exists() else None
    evals = load_probes(eval_file)
    if not evals:
        raise InputError(f"{eval_file} holds no items")
    return Benchmark(path=root, eval=evals, train=train)
