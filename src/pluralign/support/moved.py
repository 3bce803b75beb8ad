"""Module paths of 0.2 that still import, with a DeprecationWarning, until 0.4.

0.3 grouped the flat modules into wings (``pluralign.targets`` is now
``pluralign.choice.targets``, ``pluralign.judges`` is ``pluralign.prediction.judges``, ...). An
import of an old path gets the module at its new one, the same object, so code written against
0.2 keeps working and is told where to look."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

MOVED = {
    "attributes": "choice.attributes",
    "targets": "choice.targets",
    "groups": "choice.target_data",
    "probes": "choice.probes",
    "selection": "choice.selection",
    "explain": "choice.explanation",
    "judges": "prediction.judges",
    "prompts": "prediction.prompts",
    "icl": "prediction.examples",
    "methods": "prediction.methods",
    "generators": "prediction.generators",
    "embeddings": "prediction.embeddings",
    "weights": "prediction.weights",
    "data": "evaluation.data",
    "evaluate": "evaluation.evaluate",
    "runs": "evaluation.runs",
    "metrics": "evaluation.metrics",
    "group_metrics": "evaluation.metrics",
    "report": "evaluation.report",
    "reference": "evaluation.reference",
    "reasonings": "evaluation.reasonings",
    "profile": "people.profile",
    "userstore": "people.userstore",
    "files": "support.files",
    "names": "support.names",
    "errors": "support.errors",
    "redact": "support.redact",
    "deadline": "support.deadline",
    "options": "support.options",
    "registry": "support.registry",
    "home": "support.home",
    "cpu": "support.cpu",
    "hf": "support.hf",
    "strict": "support.strict",
}
"""0.2's module (under ``pluralign.``) -> where it lives now; a moved package's submodules follow it."""

MOVED_NAMES = {("prediction.methods", "build_method"): "settings"}
"""A name that left its package (module, name) -> the module (under ``pluralign.``) that has it
now. Looked up by name, so the package that lost it need not import a wing above its own."""


def moved_name(module: str, name: str) -> Any:
    """``name``, which ``module`` (``pluralign.``...) no longer holds, from where it lives now,
    with a DeprecationWarning; an AttributeError for a name that never moved."""
    new = MOVED_NAMES.get((module.removeprefix("pluralign."), name))
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.{name} is now pluralign.{new}.{name}; the old path works until pluralign 0.4",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(f"pluralign.{new}"), name)


def new_name(old: str) -> str | None:
    """Where the module ``old`` lives now (None: it did not move)."""
    parts = old.split(".")
    if len(parts) < 2 or parts[0] != "pluralign" or parts[1] not in MOVED:
        return None
    return ".".join(["pluralign", MOVED[parts[1]], *parts[2:]])


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = new_name(spec.name)
        assert new is not None
        warnings.warn(
            f"{spec.name} is now {new}; the old path works until pluralign 0.4", DeprecationWarning, stacklevel=3
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module at its new path is already executed."""


def install() -> None:
    if not any(isinstance(finder, _Moved) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Moved())  # before the path finder, which would load a second copy
