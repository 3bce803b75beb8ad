"""pluralign: choose, among candidate responses, the one that fits a person's values.

The public names load on first use (PEP 562), so ``import pluralign`` and the command
line start fast and a Ctrl-C during start-up is handled before heavy libraries load."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pluralign.support import moved

moved.install()  # 0.2's module paths (pluralign.targets, pluralign.judges, ...) still import, with a warning

if TYPE_CHECKING:
    from pluralign.api import Chooser, ChooseResult, achoose, choose, respond
    from pluralign.choice.attributes import BUILTIN_ATTRIBUTES, Attribute, AttributeRegistry
    from pluralign.choice.probes import Probe
    from pluralign.choice.selection import Choice, Metric, select
    from pluralign.choice.targets import AlignmentTarget
    from pluralign.support.errors import PluralignError

_PUBLIC = {
    "Chooser": "pluralign.api",
    "ChooseResult": "pluralign.api",
    "choose": "pluralign.api",
    "achoose": "pluralign.api",
    "respond": "pluralign.api",
    "BUILTIN_ATTRIBUTES": "pluralign.choice.attributes",
    "Attribute": "pluralign.choice.attributes",
    "AttributeRegistry": "pluralign.choice.attributes",
    "PluralignError": "pluralign.support.errors",
    "Probe": "pluralign.choice.probes",
    "Choice": "pluralign.choice.selection",
    "Metric": "pluralign.choice.selection",
    "select": "pluralign.choice.selection",
    "AlignmentTarget": "pluralign.choice.targets",
}
__all__ = [
    "BUILTIN_ATTRIBUTES",
    "AlignmentTarget",
    "Attribute",
    "AttributeRegistry",
    "Choice",
    "ChooseResult",
    "Chooser",
    "Metric",
    "PluralignError",
    "Probe",
    "achoose",
    "choose",
    "respond",
    "select",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pluralign")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def __getattr__(name: str) -> Any:
    """Public names and ``__version__`` load on first use (a CLI start needs neither)."""
    if name == "__version__":
        value: Any = _version()
        globals()[name] = value
        return value
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    if name in moved.MOVED:  # pluralign.targets and the like, as 0.2 had them (with a warning)
        return importlib.import_module(f"pluralign.{name}")
    raise AttributeError(f"module 'pluralign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
