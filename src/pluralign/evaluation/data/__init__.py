"""Benchmarks: loading, building (HelpSteer2, MIC), splitting, and the reference's format."""

from pluralign.choice.probes import load_probes, save_probes
from pluralign.evaluation.data.benchmark import Benchmark, load_benchmark

__all__ = ["Benchmark", "load_benchmark", "load_probes", "save_probes"]
