"""The next question to ask a person: the pool item whose answer would tell the most about them.

Ask. The next question is the pool item whose answer is expected to make the posterior's
choices agree most with the person's own on the rest of the pool (expected agreement, the
"expected error reduction" of active learning): for every answer, weighted by how likely it
is, the posterior it would leave and, per pool item, the mass of the profiles whose closest
responses include the response that posterior would pick. Asking for the most information
about the profile itself (mutual information, an earlier rule) spends questions telling
apart profiles that choose alike; on 10 asked questions expected agreement took the fit from
96.30% to 96.63% on middle-valued targets (96.89% is the most any fit could reach from
those questions) and from 96.63% to 97.60% on the paper's sampled ones (bench/profile_fit.py,
docs/results.md, section 12). The information gain of the chosen item is still reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

from pluralign.choice.attributes import Attribute
from pluralign.people.profile import (
    ASK_EVAL_ITEMS,
    ASK_MIN_MASS,
    ASK_TOP_PROFILES,
    BETA,
    CHUNK_CELLS,
    EPSILON,
    ChoiceRecord,
    Grid,
    check_predictions,
    choice_probs,
    posterior,
    response_matrix,
    sq_distances,
)
from pluralign.support import deadline
from pluralign.support.errors import InputError


class NextQuestion(BaseModel):
    id: str
    index: int
    expected_agreement: float
    """The share of the pool on which the posterior after this answer is expected to choose as the person does."""
    information_bits: float
    """What the answer is expected to tell about the profile (mutual information)."""


def _closest_sets(
    present: np.ndarray, values: np.ndarray, records: Sequence[ChoiceRecord], attributes: Sequence[str]
) -> np.ndarray:
    """Per profile, response slot and record, 1 where the response is among the closest (exact
    ties), 0 else and for padding: (profiles, most responses, records), float32 for the products
    that follow."""
    width = max(len(r.responses) for r in records)
    out = np.zeros((len(present), width, len(records)), dtype=np.float32)
    for size, positions in _by_size(records, len(present)):
        deadline.check()
        d2 = _slot_distances(present, values, [records[n] for n in positions], attributes)
        out[:, :size, positions] = d2 <= d2.min(axis=1, keepdims=True) + 1e-12
    return out


def _slot_distances(
    present: np.ndarray, values: np.ndarray, records: Sequence[ChoiceRecord], attributes: Sequence[str]
) -> np.ndarray:
    """Squared distances for records with as many responses: (profiles, response slot, record),
    slot-major so that reductions over the few responses run along contiguous rows."""
    # slots, records, attributes
    x = np.stack([response_matrix(r, attributes) for r in records], axis=1).astype(present.dtype)
    size = x.shape[0]
    return sq_distances(present, values, x.reshape(-1, x.shape[2])).reshape(len(present), size, len(records))


def _by_size(records: Sequence[ChoiceRecord], profiles: int) -> list[tuple[int, list[int]]]:
    """Positions of the records with as many responses, in chunks of at most ``CHUNK_CELLS``
    profile-response cells, so that each chunk is one matrix product."""
    groups: dict[int, list[int]] = {}
    for n, r in enumerate(records):
        groups.setdefault(len(r.responses), []).append(n)
    chunks: list[tuple[int, list[int]]] = []
    for size, group in groups.items():
        step = max(1, CHUNK_CELLS // (profiles * size))
        chunks.extend((size, group[i : i + step]) for i in range(0, len(group), step))
    return chunks


def next_question(
    attributes: Sequence[Attribute],
    choices: Sequence[ChoiceRecord],
    pool: Sequence[ChoiceRecord],
    beta: float = BETA,
    eps: float = EPSILON,
) -> NextQuestion:
    """The pool item (not already answered, by id) whose answer is expected to make the fit
    choose most like the person on the rest of the pool."""
    asked = {c.id for c in choices}
    indices = [i for i, r in enumerate(pool) if r.id not in asked]
    candidates = [pool[i] for i in indices]
    if not candidates:
        raise InputError("every pool item has been answered already")
    grid = Grid.build(attributes)
    check_predictions(choices, grid.attributes)
    check_predictions(candidates, grid.attributes, "pool")
    post = posterior(grid, choices, beta, eps)
    top = np.argsort(-post)[:ASK_TOP_PROFILES]
    top = top[post[top] >= post[top[0]] * ASK_MIN_MASS]
    w = post[top] / post[top].sum()
    present, values = grid.present[top], grid.values[top]
    every = max(1, math.ceil(len(candidates) / ASK_EVAL_ITEMS))
    judged = np.arange(0, len(candidates), every)  # positions in candidates the agreement is measured on
    flat = _closest_sets(present, values, [candidates[j] for j in judged], grid.attributes).reshape(len(w), -1)
    place = np.full(len(candidates), -1)
    place[judged] = np.arange(len(judged))  # where a candidate is among the judged items, if it is
    agreement = np.empty(len(candidates))
    present32, values32, w32 = present.astype(np.float32), values.astype(np.float32), w.astype(np.float32)
    # a chunk bounds both its profiles x responses and its answers x judged responses
    for size, group in _by_size(candidates, max(len(w), flat.shape[1])):
        deadline.check()
        d2 = _slot_distances(present32, values32, [candidates[c] for c in group], grid.attributes)
        p = choice_probs(d2, beta, eps)  # P(answer | profile): profiles x answer x item, float32 for speed
        # per answer: the unnormalised posterior it leaves, and per judged item the mass of its
        # profiles that would agree with that posterior's pick; summed over answers this is
        # P(answer) x agreement, i.e. the expected agreement times the number of judged items
        after = (w32[:, None, None] * p).reshape(len(w), -1)  # profiles x (answer, item)
        mass = (after.T @ flat).reshape(size, len(group), -1, len(judged))  # answer, item, slot, judged item
        right = mass.max(axis=2).sum(axis=0)  # items x judged items
        own = place[group]  # a candidate's own answer is known once asked: not part of its score
        self_term = np.where(own >= 0, right[np.arange(len(group)), np.maximum(own, 0)], 0.0)
        agreement[group] = (right.sum(axis=1) - self_term) / max(1, len(judged) - 1)
    # the highest expected agreement; near ties go to the earliest pool item
    best = int(np.flatnonzero(agreement >= agreement.max() - 1e-9)[0])
    d2 = _slot_distances(present, values, [candidates[best]], grid.attributes)
    p = choice_probs(d2, beta, eps)[:, :, 0]  # profiles x answers, in float64
    marginal = w @ p
    gain = float(-(marginal * np.log(np.clip(marginal, 1e-300, None))).sum() + w @ (p * np.log(p)).sum(axis=1))
    return NextQuestion(
        id=candidates[best].id,
        index=indices[best],
        expected_agreement=round(float(agreement[best]), 6),
        information_bits=round(gain / math.log(2), 6),
    )
