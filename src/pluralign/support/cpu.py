"""How many CPU threads llama.cpp should use.

llama.cpp's worker threads spin while they wait for each other, so on cores that other
processes keep busy more threads are much slower, not faster (measured here: see
docs/results.md). The default therefore takes only the cores that are idle now, and never
fewer than one. "Now" is a quarter-second sample of /proc/stat, not the load average, which
lags a minute behind and would starve a machine that just became idle.
"""

from __future__ import annotations

import os
import time

SAMPLE_SECONDS = 0.25


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs, or None where /proc/stat is not there."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """How many cores other work keeps busy right now (this process is idle while it looks)."""
    first = _cpu_times()
    if first is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):
            return 0.0
    time.sleep(seconds)
    second = _cpu_times()
    if second is None or second[1] == first[1]:
        return 0.0
    share = (second[0] - first[0]) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def default_threads() -> int:
    """The cores this process may use, less those other processes are busy on now."""
    cpus = usable_cpus()
    return max(1, min(cpus, cpus - int(busy_cores() + 0.5)))
