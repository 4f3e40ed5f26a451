"""Exact Shapley values: every one of the 2^n coalitions evaluated once, in batches."""

from __future__ import annotations

from functools import partial

import numpy as np

from ..cache import masks_from_keys
from .common import EstimatorContext, RawEstimate, shapley_size_weights

__all__ = ["exact", "shapley_from_table", "popcounts", "MAX_EXACT_PLAYERS"]

# 2^25 utilities is 256 MiB of float64 and hours of a typical FL utility: beyond that,
# exact is not a reasonable request.
MAX_EXACT_PLAYERS = 25
_ENUMERATION_BATCH = 1 << 16


def popcounts(n: int) -> np.ndarray:
    """Coalition sizes of all 2^n bitmasks, as uint8 (built by doubling: no bit loops)."""
    sizes = np.zeros(1, dtype=np.uint8)
    for _ in range(n):
        sizes = np.concatenate([sizes, sizes + 1])
    return sizes


def shapley_from_table(table: np.ndarray, n: int) -> np.ndarray:
    """Shapley values from utilities ``table[mask]`` of all 2^n coalitions."""
    if table.shape != (1 << n,):
        raise ValueError(f"need all {1 << n} coalition values, got {table.shape}")
    sizes = popcounts(n)
    weights = shapley_size_weights(n)
    values = np.empty(n)
    half = np.arange(1 << (n - 1), dtype=np.int64)
    for player in range(n):
        low_bits = half & ((1 << player) - 1)
        without = ((half >> player) << (player + 1)) | low_bits  # every mask lacking the player
        with_player = without | (1 << player)
        values[player] = weights[sizes[without]] @ (table[with_player] - table[without])
    return values


def exact(context: EstimatorContext) -> RawEstimate:
    n = context.n
    if n > MAX_EXACT_PLAYERS:
        raise ValueError(f"exact valuation is limited to {MAX_EXACT_PLAYERS} players, got {n}")
    table = np.empty(1 << n)
    block_bits = getattr(context.game, "block_bits", None)
    if callable(getattr(context.game, "utility_block", None)) and isinstance(block_bits, int) and block_bits >= 1:
        # The game enumerates aligned blocks itself (FL games: one addition per coalition).
        for start in range(0, 1 << n, 1 << block_bits):
            keys = np.arange(start, start + (1 << block_bits), dtype=np.int64)
            compute = partial(context.game.utility_block, start, block_bits)
            table[start : start + keys.size] = context.oracle.evaluate(masks_from_keys(keys, n), compute_all=compute)
        return RawEstimate(values=shapley_from_table(table, n), stderr=np.zeros(n), info={"_table": table})
    for start in range(0, 1 << n, _ENUMERATION_BATCH):
        keys = np.arange(start, min(start + _ENUMERATION_BATCH, 1 << n), dtype=np.int64)
        table[start : start + keys.size] = context.oracle.evaluate(masks_from_keys(keys, n))
    values = shapley_from_table(table, n)
    return RawEstimate(values=values, stderr=np.zeros(n), info={"_table": table})
