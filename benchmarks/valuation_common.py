"""Shared by benchmarks/valuation.py and its peer runner (which runs under numpy<2):
games travel as utility tables, and every estimator's utility goes through the same
distinct-coalition counter. Pure Python + numpy, no engine import."""

from __future__ import annotations

import numpy as np


class DistinctCounter:
    """A batch utility (k, n) 0/1 -> (k,) wrapped to count distinct coalitions asked for.

    Every peer estimator sees its utility through one of these (ours counts through the
    engine's oracle, with the same definition), so "evaluations" means the same for all:
    distinct coalitions, the empty one included, repeats free in the count (but not in
    time: a peer that re-evaluates a coalition pays for it, as it would in production).
    """

    def __init__(self, utility, n_players: int) -> None:
        self.utility = utility
        self.n_players = n_players
        self.powers = 1 << np.arange(n_players, dtype=np.int64)
        self.seen: set[int] = set()

    @classmethod
    def from_table(cls, table) -> "DistinctCounter":
        table = np.asarray(table, dtype=np.float64)
        n_players = int(round(np.log2(table.size)))
        powers = 1 << np.arange(n_players, dtype=np.int64)
        return cls(lambda coalitions: table[coalitions.astype(np.int64) @ powers], n_players)

    @property
    def distinct(self) -> int:
        return len(self.seen)

    def __call__(self, coalitions) -> np.ndarray:
        coalitions = np.atleast_2d(np.asarray(coalitions) > 0.5)
        self.seen.update((coalitions.astype(np.int64) @ self.powers).tolist())
        return np.asarray(self.utility(coalitions), dtype=np.float64)

    def of_indices(self, indices) -> float:
        """Utility of the coalition given as player indices (pyDVL's interface)."""
        mask = np.zeros((1, self.n_players), dtype=bool)
        mask[0, np.asarray(indices, dtype=int)] = True
        return float(self(mask)[0])


def fl_round_game_from_npz(path):
    """Rebuild a benchmark FL round game from the arrays the benchmark saved."""
    from valuation.engine import FLRoundGame

    data = np.load(path, allow_pickle=False)
    n = int(data["n_players"])
    return FLRoundGame(
        family="logistic", task="binary", metric=str(data["metric"]),
        global_weights={"coef": data["coef"], "intercept": data["intercept"]},
        updates=[{"coef": data["update_coef"][i], "intercept": data["update_intercept"][i]} for i in range(n)],
        num_examples=data["num_examples"], X=data["X"], y=data["y"],
    )


def relative_l2_error(estimate, exact) -> float:
    estimate, exact = np.asarray(estimate, dtype=float), np.asarray(exact, dtype=float)
    return float(np.linalg.norm(estimate - exact) / np.linalg.norm(exact))
