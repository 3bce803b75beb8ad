"""Methods: turn a probe into predictions (or a choice). Each module registers its methods;
:func:`build_method` builds one by name."""

from __future__ import annotations

from pluralign.prediction.methods.base import CallStats, Judgement, Method
from pluralign.prediction.methods.build import build_method
from pluralign.prediction.methods.registry import MethodSpec, method_spec, methods, register_method

__all__ = [
    "CallStats",
    "Judgement",
    "Method",
    "MethodSpec",
    "build_method",
    "method_spec",
    "methods",
    "register_method",
]
