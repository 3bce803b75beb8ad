"""The largest profile fit a feedback may start under the service's default limits: MIC's six
attributes (262,143 candidate profiles) over the most recent choices of 10 responses that fit
--max-profile-work (50 million units: 19 choices). Prints the time and the peak RSS.

    python bench/feedback_fit.py
"""

from __future__ import annotations

import random
import resource
import time

from common import header, uptime

from pluralign.choice.attributes import DEFAULT_REGISTRY
from pluralign.people.profile import ChoiceRecord, fit_profile, grid_size, work_units
from pluralign.server.config import ServiceOptions

NAMES = ["care", "fairness", "liberty", "loyalty", "authority", "sanctity"]


def main() -> None:
    print(header())
    attrs = DEFAULT_REGISTRY.require(NAMES)
    limit = ServiceOptions().max_profile_work
    n = limit // (grid_size(attrs) * 10)
    rng = random.Random(0)
    records = [
        ChoiceRecord(
            id=f"r{k}",
            question="q",
            responses=[f"r{i}" for i in range(10)],
            chosen=rng.randrange(10),
            predictions=[{a: rng.random() for a in NAMES} for _ in range(10)],
        )
        for k in range(n)
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    fit_profile(attrs, records)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{grid_size(attrs):,} profiles x {n} choices of 10 responses = {work_units(attrs, records):,} units "
        f"(limit {limit:,}): fit {seconds:.2f} s, peak RSS {peak:.0f} MB (before the fit {before:.0f} MB)"
    )
    print(uptime())


if __name__ == "__main__":
    main()
