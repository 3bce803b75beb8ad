"""Methods: turn a probe into predictions (or a choice). ``build_method`` names them all."""

from __future__ import annotations

from pluralign.methods.base import CallStats, Judgement, Method
from pluralign.methods.registry import METHOD_NAMES, MethodSettings, build_method

__all__ = ["METHOD_NAMES", "CallStats", "Judgement", "Method", "MethodSettings", "build_method"]
