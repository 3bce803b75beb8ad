"""What every benchmark prints beside its figures: the machine, its load, the build."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any


def output(out: Path, extension: str) -> Path:
    """The file ``out`` names with ``extension`` added: ``evidence-qwen2.5-7b`` gives
    ``evidence-qwen2.5-7b.md`` (``with_suffix`` would give ``evidence-qwen2.md`` and let two
    studies overwrite each other)."""
    return out if out.name.endswith(extension) else out.with_name(out.name + extension)


def named_path(text: str) -> Path:
    """An argparse type: a path as typed; an empty one (``--out "$OUT"`` with the variable unset)
    is refused, never taken for the current folder."""
    import argparse

    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: name a file or folder (an unset variable?)")
    return Path(text)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (exit 2 naming the value otherwise)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor()
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict[str, Any]:
    from pluralign.doctor import build_info, cpu_flags
    from pluralign.support.cpu import usable_cpus

    return {
        "cpu": cpu_model(),
        "cpu_flags": " ".join(cpu_flags()),
        "cores": usable_cpus(),
        "llama_build": build_info().get("variant", "unknown"),
        "uptime": uptime(),
    }


def header() -> str:
    m = machine()
    cpu = f"machine: {m['cpu']}, {m['cores']} cores, flags [{m['cpu_flags']}]"
    return f"{cpu}, llama.cpp build {m['llama_build']}\n{m['uptime']}"


def write_json(path: Path, data: Any) -> None:
    from pluralign.support.files import write_json_atomic

    write_json_atomic(path, data)


def write_text(path: Path, text: str) -> None:
    """A report written whole or not at all (a study's hours end in it)."""
    from pluralign.support.files import write_text_atomic

    write_text_atomic(path, text)


def settings_for(method: str, values: dict, **fixed):  # type: ignore[no-untyped-def]
    """Settings for one method of a sweep: the sweep's options that this method reads (a
    method refuses options it would not read; a sweep over several methods names them once)."""
    from pluralign.prediction.methods import method_spec
    from pluralign.settings import make_settings, read_options

    backend = values.get("backend", "llamacpp")
    read = {f for model in read_options(method_spec(method), backend) for f in model.model_fields}
    return make_settings({k: v for k, v in values.items() if k in read and v not in (None, [])}, **fixed)


def raw_library(backend: Any, n_ctx: int = 8192) -> Any:
    """llama-cpp-python's own ``Llama`` on the backend's weights and threads (the file is mapped
    once, so this costs little memory), to time the raw library beside pluralign."""
    from llama_cpp import Llama

    return Llama(
        model_path=str(backend.model_path),
        n_ctx=n_ctx,
        n_threads=backend.n_threads,
        n_threads_batch=backend.n_threads,
        verbose=False,
    )


def link_models(home: str | Path) -> None:
    """Give a throwaway pluralign home the real model cache, so a benchmark's fresh home does not
    fetch the weights again."""
    import os

    real = Path(os.environ.get("PLURALIGN_HOME", Path.home() / ".cache" / "pluralign")) / "models"
    if real.is_dir():
        os.symlink(real, Path(home) / "models")
