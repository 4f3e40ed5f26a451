"""The single door through which every estimator asks for utilities.

:class:`CoalitionOracle` turns bool coalition matrices into bitmask keys, answers
from values this estimate already used, then from the coalition cache, and only then
calls ``game.utility`` (once per batch) for what is left. It counts *distinct*
coalitions per estimate (the empty coalition counts once however often it is asked
for), enforces the budget as a hard ceiling, and checks what the game returns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .cache import CoalitionCache, coalition_keys

__all__ = ["BudgetExceeded", "CoalitionOracle", "validate_game"]


class BudgetExceeded(RuntimeError):
    """Raised when an estimator asks for more distinct coalitions than its budget.

    Estimators plan their batches with :meth:`CoalitionOracle.is_known` and
    :attr:`CoalitionOracle.remaining` so this is a guard against engine bugs, not a
    control-flow signal.
    """


def validate_game(game: Any) -> int:
    """Return ``game.n_players`` after checking the game has the contract's shape."""
    n_players = getattr(game, "n_players", None)
    if isinstance(n_players, bool) or not isinstance(n_players, (int, np.integer)):
        raise ValueError("a game needs an integer attribute n_players")
    if n_players < 1:
        raise ValueError(f"a game needs at least one player, got n_players={n_players}")
    if not callable(getattr(game, "utility", None)):
        raise ValueError("a game needs a method utility(coalitions) -> ndarray (k,)")
    return int(n_players)


class CoalitionOracle:
    """Budgeted, cached, validated access to one game's utility.

    ``bit_positions`` and ``key_offset`` place this game's coalitions in a larger key
    space (one round of a multi-round run); see :mod:`valuation.engine.cache`.
    """

    def __init__(
        self,
        game: Any,
        *,
        cache: CoalitionCache,
        budget: int | None,
        bit_positions: np.ndarray | None = None,
        key_offset: int = 0,
    ) -> None:
        self.game = game
        self.n_players = validate_game(game)
        self.cache = cache
        self.budget = budget
        self._bit_positions = bit_positions
        self._key_offset = key_offset
        self._known: dict[int, float] = {}
        self.computed = 0

    @property
    def evaluations(self) -> int:
        """Distinct coalitions this estimate has used (cached or computed)."""
        return len(self._known)

    @property
    def remaining(self) -> float:
        return math.inf if self.budget is None else self.budget - len(self._known)

    def keys(self, masks: np.ndarray) -> list[int]:
        return coalition_keys(masks, bit_positions=self._bit_positions, offset=self._key_offset)

    def is_known(self, key: int) -> bool:
        return key in self._known

    def evaluate(self, masks: np.ndarray, keys: list[int] | None = None, *, compute_all=None) -> np.ndarray:
        """Utilities of the rows of ``masks`` (k, n), evaluating each new coalition once.

        ``compute_all()``, if given, returns the utilities of *all* rows at once by a
        faster route (exact enumeration's blocks); it is used only when every row is
        new and distinct, and must give the same values as ``game.utility``.
        """
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.n_players:
            raise ValueError(f"coalitions must have shape (k, {self.n_players}), got {masks.shape}")
        if keys is None:
            keys = self.keys(masks)
        known = self._known
        first_row_of_missing: dict[int, int] = {}
        for row, key in enumerate(keys):
            if key not in known and key not in first_row_of_missing:
                first_row_of_missing[key] = row
        if first_row_of_missing:
            if len(first_row_of_missing) > self.remaining:
                raise BudgetExceeded(
                    f"{len(first_row_of_missing)} new coalitions requested, {self.remaining} left of budget {self.budget}"
                )
            self._fill(masks, first_row_of_missing, compute_all if len(first_row_of_missing) == len(keys) else None)
        return np.fromiter((known[key] for key in keys), dtype=np.float64, count=len(keys))

    def _fill(self, masks: np.ndarray, first_row_of_missing: dict[int, int], compute_all=None) -> None:
        missing_keys = list(first_row_of_missing)
        from_cache = self.cache.get_many(missing_keys)
        to_compute = [key for key in missing_keys if key not in from_cache]
        for key in missing_keys:
            if key in from_cache:
                self._known[key] = float(from_cache[key])
        if not to_compute:
            return
        if compute_all is not None and len(to_compute) == len(missing_keys):
            values = self._checked(compute_all(), len(to_compute))
        else:
            rows = np.fromiter((first_row_of_missing[key] for key in to_compute), dtype=np.intp, count=len(to_compute))
            values = self._call_utility(masks[rows])
        computed = dict(zip(to_compute, values.tolist()))
        self.cache.put_many(computed)
        self._known.update(computed)
        self.computed += len(computed)

    def _call_utility(self, coalitions: np.ndarray) -> np.ndarray:
        return self._checked(self.game.utility(coalitions.copy()), coalitions.shape[0])

    @staticmethod
    def _checked(returned: Any, count: int) -> np.ndarray:
        try:
            values = np.asarray(returned, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("utility must return numbers") from None
        if values.shape != (count,):
            raise ValueError(f"utility returned shape {values.shape} for {count} coalitions; expected ({count},)")
        if not np.all(np.isfinite(values)):
            raise ValueError("utility returned non-finite values (nan or inf)")
        return values
