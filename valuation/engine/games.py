"""The game contract, and reference games with known Shapley values.

Any object with an integer ``n_players`` and a ``utility(coalitions)`` method that maps
a bool array (k, n) to a float array (k,) is a game (:class:`Game`). The reference
games below have closed-form values; tests and the benchmark use them to check and
compare estimators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb
from typing import Protocol, runtime_checkable

import numpy as np

from .estimators.common import shapley_size_weights

__all__ = ["Game", "AirportGame", "GloveGame", "UnanimityGame", "WeightedVotingGame"]


@runtime_checkable
class Game(Protocol):
    n_players: int

    def utility(self, coalitions: np.ndarray) -> np.ndarray: ...


class AirportGame:
    """Runway cost game: ``U(S) = max_{i∈S} cost_i`` (``U(∅) = 0``).

    Closed form (Littlechild & Owen 1973): with costs sorted ascending, each segment
    ``c_(j) - c_(j-1)`` is shared equally by the ``n - j + 1`` players who need it.
    """

    def __init__(self, costs: Sequence[float]) -> None:
        self.costs = np.asarray(costs, dtype=np.float64)
        self.n_players = self.costs.size

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        return np.where(coalitions, self.costs, 0.0).max(axis=1, initial=0.0)

    def shapley_values(self) -> np.ndarray:
        order = np.argsort(self.costs, kind="stable")
        sorted_costs = self.costs[order]
        segments = np.diff(np.concatenate([[0.0], sorted_costs]))
        sharers = self.n_players - np.arange(self.n_players)
        values_sorted = np.cumsum(segments / sharers)
        values = np.empty(self.n_players)
        values[order] = values_sorted
        return values


class GloveGame:
    """Gloves market: ``U(S) = min(#left gloves in S, #right gloves in S)``.

    The value depends only on the numbers of left and right holders, so it is a double
    sum over how many of each a coalition holds (exact, no enumeration of coalitions).
    """

    def __init__(self, *, n_left: int, n_right: int) -> None:
        self.left = np.arange(n_left + n_right) < n_left
        self.n_left, self.n_right = n_left, n_right
        self.n_players = n_left + n_right

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        lefts = coalitions[:, self.left].sum(axis=1)
        rights = coalitions[:, ~self.left].sum(axis=1)
        return np.minimum(lefts, rights).astype(np.float64)

    def shapley_values(self) -> np.ndarray:
        weights = shapley_size_weights(self.n_players)

        def value(own: int, other: int) -> float:
            # A holder of a glove type with `own` holders (itself included) vs `other`.
            total = 0.0
            for same in range(own):
                for opposite in range(other + 1):
                    gain = min(same + 1, opposite) - min(same, opposite)
                    total += comb(own - 1, same) * comb(other, opposite) * weights[same + opposite] * gain
            return total

        left_value = value(self.n_left, self.n_right)
        right_value = value(self.n_right, self.n_left)
        return np.where(self.left, left_value, right_value)


class UnanimityGame:
    """A sum of unanimity games: ``U(S) = Σ_T d_T [T ⊆ S]``; ``φ_i = Σ_{T∋i} d_T / |T|``."""

    def __init__(self, n_players: int, dividends: Mapping[tuple[int, ...], float]) -> None:
        self.n_players = n_players
        self.coalitions = [tuple(sorted(set(t))) for t in dividends]
        self.dividends = np.array(list(dividends.values()), dtype=np.float64)
        self._members = np.zeros((len(self.coalitions), n_players), dtype=bool)
        for row, members in enumerate(self.coalitions):
            if not members or min(members) < 0 or max(members) >= n_players:
                raise ValueError(f"unanimity coalition {members} is empty or out of range")
            self._members[row, list(members)] = True

    @classmethod
    def random(cls, n_players: int, *, max_order: int, n_terms: int, seed: int) -> "UnanimityGame":
        rng = np.random.default_rng(seed)
        dividends: dict[tuple[int, ...], float] = {}
        for player in range(n_players):  # a main effect for everyone, as real games have
            dividends[(player,)] = float(rng.normal(1.0, 0.5))
        while len(dividends) < n_players + n_terms:
            order = int(rng.integers(2, max_order + 1))
            members = tuple(sorted(rng.choice(n_players, size=order, replace=False).tolist()))
            dividends[members] = dividends.get(members, 0.0) + float(rng.normal(0.0, 1.0))
        return cls(n_players, dividends)

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        coalitions = np.asarray(coalitions, dtype=bool)
        missing = (~coalitions).astype(np.float64) @ self._members.T.astype(np.float64)
        return (missing == 0).astype(np.float64) @ self.dividends

    def shapley_values(self) -> np.ndarray:
        sizes = self._members.sum(axis=1)
        return (self.dividends / sizes) @ self._members.astype(np.float64)


class WeightedVotingGame:
    """``U(S) = 1`` when the coalition's weight reaches ``quota``, else 0."""

    def __init__(self, weights: Sequence[float], quota: float) -> None:
        self.weights = np.asarray(weights, dtype=np.float64)
        self.quota = float(quota)
        self.n_players = self.weights.size

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        return (np.asarray(coalitions, dtype=np.float64) @ self.weights >= self.quota).astype(np.float64)
