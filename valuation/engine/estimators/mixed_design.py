"""A size-stratified design of complement pairs *and* single coalitions.

Complement pairs (S, N∖S) cancel the even part of the game exactly — a gain when the two
utilities of a pair move together, a loss when they move against each other: in a
self-dual game (a weighted majority game, where exactly one of S and N∖S wins) a pair
costs two evaluations and tells what one would. :class:`MixedDesign` extends the paired
design of :mod:`.stratified`: per pair size k it keeps drawing pairs, or switches (for
good) to single coalitions drawn separately in the strata k and n-k, whichever the
caller's plan says. Every stratum's sample stays a simple random sample without
replacement (singles continue the stratum's own shuffle past what the pairs took), so
the stratified estimator stays unbiased; pairs are remembered as links for its variance.

Allocation (:meth:`MixedDesign.allocate`): final evaluations per cell (a pair size drawn
in pairs, or a stratum drawn in singles) in proportion to the plan's weights, never
below what a cell already holds nor above what it can hold (water-filling).
"""

from __future__ import annotations

from math import comb

import numpy as np

from ..oracle import CoalitionOracle
from .stratified import _ENUMERATE_LIMIT, PairedStratifiedDesign, _representatives, draw_unseen

__all__ = ["MixedDesign"]


class MixedDesign(PairedStratifiedDesign):
    """Pairs per pair size k until the plan switches k to singles (one way)."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        super().__init__(n, rng)
        self.single_sizes = {k: sorted({k, n - k}) for k in self.pair_sizes}
        self.singles_of = {k: False for k in self.pair_sizes}  # True once k draws singles
        self.single_taken = {s: 0 for s in range(1, n)}
        self._single_blocks: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._single_order: dict[int, np.ndarray] = {}
        self._single_seen: dict[int, set[bytes]] = {}

    def single_room(self, s: int) -> int:
        """Coalitions of size s not yet evaluated."""
        k = min(s, self.n - s)
        in_pairs = 2 * self.taken[k] if 2 * k == self.n else self.taken[k]
        return comb(self.n, s) - in_pairs - self.single_taken[s]

    @property
    def evaluations(self) -> int:
        return 2 * self.pairs_taken + sum(self.single_taken.values())

    @property
    def complete(self) -> bool:
        return all(self.single_room(s) == 0 for s in range(1, self.n))

    def held(self, cell) -> int:
        """Evaluations a cell holds: both members of its pairs, or every coalition of its
        stratum (pairs' members included)."""
        kind, index = cell
        if kind == "pair":
            return 2 * self.taken[index]
        k = min(index, self.n - index)
        return (2 if 2 * k == self.n else 1) * self.taken[k] + self.single_taken[index]

    def room(self, cell) -> int:
        kind, index = cell
        if kind == "pair":
            return 0 if self.singles_of[index] else 2 * (self.capacity[index] - self.taken[index])
        return self.single_room(index)

    def allocate_cells(self, spare: int, weight: dict) -> dict:
        """New evaluations per cell — ``("pair", k)`` (even counts) or ``("single", s)`` —
        at most ``spare`` in all, bringing each cell's total towards ``λ weight``
        (see module doc)."""
        held = {cell: self.held(cell) for cell in weight}
        room = {cell: self.room(cell) for cell in weight}
        if spare <= 0:
            return {cell: 0 for cell in weight}
        target = _water_fill(held, room, weight, spare)
        return _round_cells(target, held, room, spare)

    def grow_cells(self, oracle: CoalitionOracle, new: dict) -> None:
        """Draw and evaluate the new evaluations per cell from :meth:`allocate_cells`."""
        pair_target = dict(self.taken)
        for (kind, index), count in new.items():
            if kind == "pair":
                pair_target[index] += count // 2
        if any(pair_target[k] > self.taken[k] for k in self.pair_sizes):
            self._grow_pairs(oracle, pair_target)
        drawn = [
            (index, self._draw_single(index, count))
            for (kind, index), count in new.items()
            if kind == "single" and count > 0
        ]
        if not drawn:
            return
        values = oracle.evaluate(np.concatenate([masks for _, masks in drawn]))
        offset = 0
        for s, masks in drawn:
            self._single_blocks.setdefault(s, []).append((masks, values[offset : offset + masks.shape[0]]))
            self.single_taken[s] += masks.shape[0]
            offset += masks.shape[0]

    def _grow_pairs(self, oracle: CoalitionOracle, pair_target: dict) -> None:
        batch = []
        for k in self.pair_sizes:
            count = pair_target[k] - self.taken[k]
            if count > 0:
                if self.singles_of[k]:
                    raise RuntimeError(f"pair size {k} already draws singles")
                batch.append((k, self._draw(k, count)))
                self.taken[k] += count
        self._evaluate_pairs(oracle, batch)

    def _draw_single(self, s: int, count: int) -> np.ndarray:
        """``count`` new coalitions of size s, uniformly among those not yet evaluated."""
        n, k = self.n, min(s, self.n - s)
        self.singles_of[k] = True
        if comb(n, s) <= _ENUMERATE_LIMIT:
            order = self._single_candidates(s)
            start = self.single_taken[s]
            return order[start : start + count]
        return draw_unseen(self.rng, n, s, count, self._single_seen.setdefault(s, self._pair_keys(s)))

    def _single_candidates(self, s: int) -> np.ndarray:
        """Stratum s in a random order, less the coalitions the pairs took (fixed the
        first time s draws singles; k never draws pairs again after that)."""
        if s in self._single_order:
            return self._single_order[s]
        n, k = self.n, min(s, self.n - s)
        used = self.taken[k]
        if 2 * k == n:
            # Representatives hold player 0; the stratum is them and their complements.
            rest = self._shuffled[k][used:] if k in self._shuffled else _representatives(n, k)
            pool = np.concatenate([rest, ~rest])
        elif k in self._shuffled:
            rest = self._shuffled[k][used:]
            pool = rest if s == k else ~rest
        else:
            pool = _representatives(n, k) if s == k else ~_representatives(n, k)
        self._single_order[s] = pool[self.rng.permutation(pool.shape[0])]
        return self._single_order[s]

    def _pair_keys(self, s: int) -> set[bytes]:
        k = min(s, self.n - s)
        blocks = [reps for reps, _, _ in self._pair_blocks.get(k, [])]
        keys = set()
        for reps in blocks:
            for mask in reps if s == k or 2 * k == self.n else ~reps:
                keys.add(np.packbits(mask).tobytes())
            if 2 * k == self.n:
                keys.update(np.packbits(mask).tobytes() for mask in ~reps)
        return keys

    def singles(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Per size s: the single coalitions drawn and their utilities."""
        return {
            s: (np.concatenate([m for m, _ in blocks]), np.concatenate([v for _, v in blocks]))
            for s, blocks in self._single_blocks.items()
        }


def _water_fill(held: dict, room: dict, weight: dict, spare: float) -> dict:
    """Levels ``clip(λ w, held, held + room)`` whose increase over ``held`` sums to
    ``spare`` (or every room filled), by bisection on λ."""
    cells = list(weight)
    low_level = np.array([held[c] for c in cells], dtype=np.float64)
    high_level = low_level + np.array([room[c] for c in cells], dtype=np.float64)
    w = np.array([weight[c] for c in cells], dtype=np.float64)

    def added(scale):
        return np.clip(scale * w, low_level, high_level) - low_level

    if added(1e300).sum() <= spare:
        scale = 1e300
    else:
        low, high = 0.0, 1.0
        while added(high).sum() < spare:
            high *= 2.0
        for _ in range(60):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if added(middle).sum() < spare else (low, middle)
        scale = high
    return dict(zip(cells, (low_level + added(scale)).tolist()))


def _round_cells(target: dict, held: dict, room: dict, spare: int) -> dict:
    """New whole evaluations per cell (pairs: even counts), at most ``spare`` in all,
    largest remainders first."""
    step = {c: 2 if c[0] == "pair" else 1 for c in target}
    new = {c: int((target[c] - held[c] + 1e-9) // step[c]) * step[c] for c in target}
    left = spare - sum(new.values())
    for cell in sorted(target, key=lambda c: (-(target[c] - held[c] - new[c]) / step[c], c)):
        if left >= step[cell] and new[cell] + step[cell] <= room[cell] and target[cell] - held[cell] > new[cell]:
            new[cell] += step[cell]
            left -= step[cell]
    return new
