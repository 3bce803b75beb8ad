"""Benchmarks: loading, building (HelpSteer2, MIC), splitting, and the reference's format."""

from pluralign.data.benchmark import Benchmark, load_benchmark, load_probes, save_probes

__all__ = ["Benchmark", "load_benchmark", "load_probes", "save_probes"]
