"""A benchmark directory holds ``train.json`` (optional, for few-shot) and ``eval.json``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pluralign.errors import InputError
from pluralign.files import read_json, write_json_atomic
from pluralign.probes import Probe

BENCHMARK_ENV = "PLURALIGN_BENCHMARK"


@dataclass(frozen=True)
class Benchmark:
    path: Path
    eval: list[Probe]
    train: list[Probe] | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def attributes(self) -> list[str]:
        """Attributes labelled on every eval response, in first-seen order."""
        if not self.eval or self.eval[0].labels is None:
            return []
        names = list(self.eval[0].labels[0])
        for probe in self.eval:
            for label in probe.labels or []:
                names = [n for n in names if n in label]
        return names


def load_probes(path: str | Path) -> list[Probe]:
    """Read a JSON list of probes, naming the item and the problem on failure."""
    path = Path(path)
    raw = read_json(path, "benchmark file")
    if not isinstance(raw, list):
        raise InputError(f"{path}: expected a JSON list of items")
    probes = []
    for i, item in enumerate(raw):
        try:
            probes.append(Probe.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "item"
            msg = first["msg"].removeprefix("Value error, ")
            if first["type"] == "too_short" and first["loc"] == ("responses",):
                msg = "needs at least 2 responses"
            raise InputError(f"{path}: item {i}: {where}: {msg}") from None
    return probes


def save_probes(path: str | Path, probes: list[Probe]) -> None:
    write_json_atomic(path, [p.model_dump(exclude_none=True) for p in probes], indent=4)


def resolve_benchmark_path(path: str | Path | None) -> Path:
    if path is None:
        env = os.environ.get(BENCHMARK_ENV)
        if not env:
            raise InputError(f"no benchmark given: pass --benchmark DIR or set {BENCHMARK_ENV}")
        path = env
    return Path(path)


def load_benchmark(path: str | Path | None = None) -> Benchmark:
    root = resolve_benchmark_path(path)
    if root.is_file():
        return Benchmark(path=root.parent, eval=load_probes(root), train=None)
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
    return Benchmark(path=root, eval=load_probes(eval_file), train=train)
