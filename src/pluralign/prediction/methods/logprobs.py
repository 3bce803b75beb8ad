"""Single-pass scoring: the expected score under the judge's token probabilities.

Instead of averaging N sampled answers, one greedy answer is generated with the score
restricted to the label levels (e.g. 0, 25, 50, 75, 100) and, at the token where each
score starts, the probability mass of the allowed values gives an expected value.
A candidate token that starts several allowed values (``1`` for 17 and 100) splits its
mass evenly between them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

_SCORE = re.compile(r'"score"\s*:\s*(\d+)')
_BARE = re.compile(r'"[^"\\]+"\s*:\s*(\d+)')
"""A scores-only answer (``{"A": 7, "B": 5}``): every value is a score."""


def level_distributions(
    tokens: Sequence[str],
    logprobs: Sequence[dict[str, float]],
    n_scores: int,
    allowed: Sequence[int],
    scores_only: bool = False,
) -> list[dict[int, float]] | None:
    """For each of the first ``n_scores`` scores in a JSON answer (items ``{"reasoning", "score"}``,
    or the integers themselves when ``scores_only``), the probability of each allowed value, or
    None when the answer does not expose them."""
    text = "".join(tokens)
    starts = []
    offset = 0
    for tok in tokens:
        starts.append(offset)
        offset += len(tok)
    matches = list((_BARE if scores_only else _SCORE).finditer(text))[:n_scores]
    if len(matches) < n_scores:
        return None
    values = [str(v) for v in allowed]
    out: list[dict[int, float]] = []
    for match in matches:
        pos = match.start(1)
        index = max(i for i, s in enumerate(starts) if s <= pos)
        prefix = text[starts[index] : pos]  # e.g. " " when the token is " 7"
        mass = dict.fromkeys(values, 0.0)
        for candidate, lp in logprobs[index].items():
            if not candidate.startswith(prefix):
                continue
            digits = candidate[len(prefix) :].strip()
            if not digits.isdigit():
                continue
            hits = [v for v in values if v.startswith(digits) or (digits.startswith(v) and digits == v)]
            for v in hits:
                mass[v] += math.exp(lp) / len(hits)
        total = sum(mass.values())
        if total <= 0:
            return None
        out.append({int(v): p / total for v, p in mass.items()})
    return out
