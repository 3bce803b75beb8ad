"""Grading methods on benchmarks: benchmark files and their builders, the evaluation run and its
folder, metrics, reports, the reference implementation's format, reasonings for a train set."""
