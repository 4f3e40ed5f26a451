"""How a valuation run is cut into chunks of work: pure, no Django.

The cut depends only on the request (method, budget or tolerance, seed), the rounds'
sizes and the configured chunk budget, never on how many workers there are, so the
scores cannot depend on them either:

- The budget is split between rounds: each gets its method's minimum, the rest evenly,
  none more than its 2^n coalitions (water-filling).
- A round whose share covers all its 2^n coalitions (and every round under ``exact``, or
  under ``auto`` without budget or tolerance) is *enumerated*: its coalition keys are cut
  into ranges of at most ``chunk_budget``; the finishing step values the complete table.
  A worker computes a range as aligned power-of-two blocks (``aligned_blocks``), the
  shape in which an FL round enumerates its coalitions fastest.
- Otherwise a round gets ``ceil(B / chunk_budget)`` independent *estimates* (at least the
  method's minimum each) whose budgets sum to its share B, each with the seed
  ``SeedSequence([seed, round, index])``; the finishing step averages them weighted by
  budget. ``loo`` and tolerance requests run one estimate per round.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ChunkPlan", "aligned_blocks", "chunk_seed", "plan_chunks", "split_budget"]

ENUMERATE, ESTIMATE = "enumerate", "estimate"


@dataclass(frozen=True)
class ChunkPlan:
    round: int
    index: int
    kind: str
    method: str
    seed: int
    budget: int | None = None
    first_key: int | None = None
    last_key: int | None = None  # exclusive

    @property
    def evaluations(self) -> int | None:
        """Coalitions this chunk will evaluate at most (None: up to its tolerance)."""
        return self.last_key - self.first_key if self.kind == ENUMERATE else self.budget


def chunk_seed(seed: int, round: int, index: int) -> int:
    """A chunk's seed: independent streams per (run seed, round, chunk), below 2^63."""
    return int(np.random.SeedSequence([seed, round, index]).generate_state(1, np.uint64)[0] >> 1)


def split_budget(budget: int, minimums: Sequence[int], caps: Sequence[int]) -> list[int]:
    """Each round its minimum, then the rest evenly up to each round's cap."""
    shares = list(minimums)
    spare = budget - sum(shares)
    open_rounds = [i for i in range(len(shares)) if shares[i] < caps[i]]
    while spare > 0 and open_rounds:
        even = max(spare // len(open_rounds), 1)
        for i in list(open_rounds):
            step = min(even, caps[i] - shares[i], spare)
            shares[i] += step
            spare -= step
            if shares[i] >= caps[i]:
                open_rounds.remove(i)
            if spare == 0:
                break
    return shares


def plan_chunks(
    *,
    method: str,
    budget: int | None,
    tolerance: float | None,
    seed: int,
    round_sizes: Sequence[tuple[int, int]],
    chunk_budget: int,
    minimum: Callable[[str, int], int],
) -> list[ChunkPlan]:
    """The chunks of a run over ``round_sizes`` = [(round, n_players), ...]."""
    caps = [2**n if n < 63 else 2**63 for _, n in round_sizes]
    shares: list[int | None] = [None] * len(round_sizes)
    if budget is not None:
        shares = split_budget(budget, [min(minimum(method, n), cap) for (_, n), cap in zip(round_sizes, caps)], caps)
    plans: list[ChunkPlan] = []
    for (t, n), cap, share in zip(round_sizes, caps, shares):
        enumerate_all = method == "exact" or (share is not None and share >= cap) or (
            method == "auto" and budget is None and tolerance is None
        )
        if enumerate_all:
            plans += _ranges(t, cap, chunk_budget, seed)
        elif share is None:  # loo, or a tolerance: one estimate that decides its own size
            plans.append(ChunkPlan(t, 0, ESTIMATE, method, chunk_seed(seed, t, 0)))
        else:
            plans += _estimates(t, method, share, chunk_budget, minimum(method, n), seed)
    return plans


def _ranges(t: int, cap: int, chunk_budget: int, seed: int) -> list[ChunkPlan]:
    count = math.ceil(cap / chunk_budget)
    return [
        ChunkPlan(t, i, ENUMERATE, "exact", chunk_seed(seed, t, i), first_key=i * chunk_budget,
                  last_key=min((i + 1) * chunk_budget, cap))
        for i in range(count)
    ]


def _estimates(t: int, method: str, share: int, chunk_budget: int, least: int, seed: int) -> list[ChunkPlan]:
    count = max(1, min(math.ceil(share / chunk_budget), share // max(least, 1)))
    base, extra = divmod(share, count)
    return [
        ChunkPlan(t, i, ESTIMATE, method, chunk_seed(seed, t, i), budget=base + (1 if i < extra else 0))
        for i in range(count)
    ]


def aligned_blocks(first: int, last: int, max_bits: int) -> Iterator[tuple[int, int]]:
    """``[first, last)`` as consecutive blocks ``(start, bits)`` of ``2**bits`` keys, each
    starting at a multiple of its length and no longer than ``2**max_bits``."""
    start = first
    while start < last:
        bits = max_bits
        while bits and (start % (1 << bits) or start + (1 << bits) > last):
            bits -= 1
        yield start, bits
        start += 1 << bits
