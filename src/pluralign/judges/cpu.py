"""How many CPU threads llama.cpp should use.

llama.cpp's worker threads spin while they wait for each other, so on cores that other
processes keep busy more threads are much slower, not faster (measured here: 2 threads on 2
busy cores took 10x longer than on idle ones, while 1 thread lost little; see
docs/results.md). The default therefore takes only the cores that are idle now, and never
fewer than one.
"""

from __future__ import annotations

import os


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_threads() -> int:
    """The cores this process may use, less the load other processes put on them now."""
    cpus = usable_cpus()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cpus
    return max(1, min(cpus, cpus - int(load + 0.5)))
