"""The paper's stratified train/eval split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pluralign.choice.probes import Probe


def stratified_split(
    probes: Sequence[Probe], attributes: Sequence[str], levels: int, cap: int = 20
) -> tuple[list[Probe], list[Probe]]:
    """For each (attribute, level), rarest first, up to ``n`` unused items go to eval and
    as many again to train, where ``n = min(smallest combination count, cap)``.

    Follows the reference step for step (including iterating a Python ``set`` of item
    indexes and numpy's default argsort) so the published split is reproduced.
    """
    rows: list[list[float]] = []
    owner: list[int] = []
    for q, probe in enumerate(probes):
        for label in probe.labels or []:
            rows.append([label[a] for a in attributes])
            owner.append(q)
    data = np.array(rows)
    level_values = [round(i / (levels - 1), 2) for i in range(levels)]
    counts = np.array([np.sum(data[:, a] == v) for a in range(len(attributes)) for v in level_values])
    per_cell = int(min(counts.min(), cap))
    train_idx: list[int] = []
    eval_idx: list[int] = []
    seen: set[int] = set()
    for cell in np.argsort(counts):
        att, lvl = divmod(int(cell), levels)
        hits = np.where(data[:, att] == level_values[lvl])[0]
        candidates = [q for q in set(owner[int(h)] for h in hits) if q not in seen]
        eval_idx.extend(candidates[:per_cell])
        train_idx.extend(candidates[per_cell : 2 * per_cell])
        seen.update(eval_idx)
        seen.update(train_idx)
    return [probes[i] for i in train_idx], [probes[i] for i in eval_idx]
