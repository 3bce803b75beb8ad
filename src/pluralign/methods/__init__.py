"""Methods: turn a probe into predictions (or a choice). Each module registers its methods;
:func:`build_method` builds one by name."""

from __future__ import annotations

from pluralign.methods.base import CallStats, Judgement, Method
from pluralign.methods.registry import MethodSpec, build_method, method_spec, methods, register_method

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
