"""Methods: turn a probe into predictions (or a choice). Each module registers its methods;
:func:`build_method` builds one by name."""

from __future__ import annotations

from typing import Any

from pluralign.prediction.methods import base
from pluralign.prediction.methods.base import Assessment, CallStats, Method
from pluralign.prediction.methods.build import build_method
from pluralign.prediction.methods.registry import MethodSpec, method_spec, methods, register_method

__all__ = [
    "Assessment",
    "CallStats",
    "Method",
    "MethodSpec",
    "build_method",
    "method_spec",
    "methods",
    "register_method",
]


def __getattr__(name: str) -> Any:
    """0.2's ``Judgement`` (now :class:`Assessment`), with a warning, until 0.4."""
    return getattr(base, name)
