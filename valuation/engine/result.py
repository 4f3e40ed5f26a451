"""The value object every estimate returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ValuationResult", "Z_95"]

# Two-sided 95 % normal quantile; the engine's confidence intervals are Wald intervals
# because every stochastic estimator here is a mean (or a smooth function of means).
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class ValuationResult:
    """Per-player values of one game and how they were obtained.

    ``values`` sum to ``utility_grand - utility_empty`` within 1e-9 (efficiency).
    ``stderr`` is the standard error of each value (after the efficiency projection,
    zeros for exact and other deterministic methods). ``evaluations`` counts distinct
    coalitions whose utility the estimate used, whether computed now or read from the
    cache; ``metadata['computed_evaluations']`` says how many were computed now.
    ``method`` is the method that produced the values (``auto`` resolved), and
    ``metadata['requested_method']`` the one asked for.
    """

    values: np.ndarray
    stderr: np.ndarray
    evaluations: int
    method: str
    seed: int
    budget: int | None
    tolerance: float | None
    utility_empty: float
    utility_grand: float
    projected: bool
    per_round: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> float:
        """``U(N) - U(∅)``, the amount the values share out."""
        return self.utility_grand - self.utility_empty

    @property
    def ci_low(self) -> np.ndarray:
        return self.values - Z_95 * self.stderr

    @property
    def ci_high(self) -> np.ndarray:
        return self.values + Z_95 * self.stderr

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (lists and plain numbers only)."""
        return {
            "values": self.values.tolist(),
            "stderr": self.stderr.tolist(),
            "ci_low": self.ci_low.tolist(),
            "ci_high": self.ci_high.tolist(),
            "evaluations": self.evaluations,
            "method": self.method,
            "seed": self.seed,
            "budget": self.budget,
            "tolerance": self.tolerance,
            "utility_empty": self.utility_empty,
            "utility_grand": self.utility_grand,
            "projected": self.projected,
            "per_round": None if self.per_round is None else self.per_round.tolist(),
            "metadata": {key: _jsonable(value) for key, value in self.metadata.items()},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
