"""One place that maps method names and settings to method objects."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from pluralign.errors import InputError
from pluralign.methods.base import Method
from pluralign.methods.simple import OracleMethod, RandomMethod

METHOD_NAMES = ("random", "oracle")


class MethodSettings(BaseModel):
    """Options shared by the CLI, the Python API and the server; each method reads its own."""

    benchmark_dir: Path | None = None


def build_method(name: str, settings: MethodSettings | None = None) -> Method:
    settings = settings or MethodSettings()
    if name == "random":
        return RandomMethod()
    if name == "oracle":
        return OracleMethod()
    raise InputError(f"unknown method {name!r} (choose from {', '.join(METHOD_NAMES)})")
