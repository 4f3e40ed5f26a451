"""Coalition caches: where utility values live between and within estimates.

A coalition is identified by its *bitmask key*: the Python int whose bit ``i`` is set
when player ``i`` is in the coalition (player 0 is the least significant bit). For a
round of a multi-round game the key is ``round_index * 2**n_players + bitmask`` so
that one cache can hold every round of a run without collisions.

The engine talks to a cache only through :class:`CoalitionCache`, a two-method
protocol, so the service can back it by its database while tests and benchmarks use
:class:`InMemoryCoalitionCache`. A cache only stores values; budget accounting is done
per estimate by :class:`~valuation.engine.oracle.CoalitionOracle`, so a warm cache
never changes which coalitions an estimate looks at (and so never changes its result).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["CoalitionCache", "InMemoryCoalitionCache", "coalition_keys", "masks_from_keys"]


@runtime_checkable
class CoalitionCache(Protocol):
    """Storage of utility values keyed by coalition bitmask.

    ``get_many`` returns the subset of ``keys`` it knows (missing keys are simply absent
    from the mapping); ``put_many`` stores new values. Implementations must return
    exactly the float that was stored (the engine relies on this for reproducibility)
    and may ignore ``put_many`` (a read-only cache is valid).
    """

    def get_many(self, keys: Iterable[int]) -> Mapping[int, float]: ...

    def put_many(self, values: Mapping[int, float]) -> None: ...


class InMemoryCoalitionCache:
    """A dict-backed cache; the default when ``estimate`` is given none."""

    def __init__(self) -> None:
        self._values: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self._values)

    def get_many(self, keys: Iterable[int]) -> dict[int, float]:
        values = self._values
        return {key: values[key] for key in keys if key in values}

    def put_many(self, values: Mapping[int, float]) -> None:
        self._values.update(values)


def coalition_keys(masks: np.ndarray, *, bit_positions: np.ndarray | None = None, offset: int = 0) -> list[int]:
    """Bitmask keys of the rows of a bool matrix ``masks`` (k, n).

    ``bit_positions[j]`` is the bit used for column ``j`` (default ``j``); it lets a
    round that has only some of a run's players use the run-wide numbering.
    """
    masks = np.asarray(masks, dtype=bool)
    n_columns = masks.shape[1]
    if bit_positions is None:
        bit_positions = np.arange(n_columns)
    highest = int(bit_positions.max()) if n_columns else 0
    if highest < 62:
        # Fast path: one integer matmul; Python ints come out of tolist().
        weights = np.left_shift(np.int64(1), bit_positions.astype(np.int64))
        keys = (masks.astype(np.int64) @ weights).tolist()
    else:
        width = highest + 1
        wide = np.zeros((masks.shape[0], width), dtype=bool)
        wide[:, bit_positions] = masks
        packed = np.packbits(wide, axis=1, bitorder="little")
        keys = [int.from_bytes(row.tobytes(), "little") for row in packed]
    if offset:
        keys = [key + offset for key in keys]
    return keys


def masks_from_keys(keys: np.ndarray, n_players: int) -> np.ndarray:
    """Inverse of :func:`coalition_keys` for ``n_players < 63`` (used by exact enumeration)."""
    keys = np.asarray(keys, dtype=np.int64)
    return ((keys[:, None] >> np.arange(n_players, dtype=np.int64)) & 1).astype(bool)
