"""Methods: turn a probe into predictions (or a choice). Each module registers its methods;
:func:`pluralign.settings.build_method` builds one by name."""

from __future__ import annotations

from typing import Any

from pluralign.prediction.methods import base
from pluralign.prediction.methods.base import Assessment, CallStats, Method
from pluralign.prediction.methods.registry import MethodSpec, method_spec, methods, register_method
from pluralign.support.moved import moved_name

__all__ = [
    "Assessment",
    "CallStats",
    "Method",
    "MethodSpec",
    "method_spec",
    "methods",
    "register_method",
]


def __getattr__(name: str) -> Any:
    """0.2's ``Judgement`` (now :class:`Assessment`) and ``build_method`` (now in
    :mod:`pluralign.settings`), with a warning, until 0.4."""
    if name == "Judgement":
        return getattr(base, name)
    return moved_name(__name__, name)
