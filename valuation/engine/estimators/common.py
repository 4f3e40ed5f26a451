"""Shared pieces of the estimators: context, raw result, efficiency projection."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import exp, lgamma
from typing import Any

import numpy as np

from ..oracle import CoalitionOracle

__all__ = ["EstimatorContext", "RawEstimate", "project_efficient", "shapley_size_weights", "mean_and_stderr"]


@dataclass
class EstimatorContext:
    """What every estimator gets: the oracle, its own RNG and the stopping rules.

    ``u_empty`` and ``u_grand`` are already evaluated (every estimate needs them for
    efficiency). ``target_stderr`` is the absolute standard error at which sampling
    may stop (from ``tolerance``), None to spend the whole budget.
    """

    game: Any
    oracle: CoalitionOracle
    rng: np.random.Generator
    u_empty: float
    u_grand: float
    target_stderr: float | None = None

    @property
    def n(self) -> int:
        return self.oracle.n_players

    @property
    def total(self) -> float:
        return self.u_grand - self.u_empty

    def precise_enough(self, stderr: np.ndarray) -> bool:
        return self.target_stderr is not None and bool(np.all(np.isfinite(stderr))) and float(stderr.max()) <= self.target_stderr


@dataclass
class RawEstimate:
    """An estimator's answer before the efficiency projection."""

    values: np.ndarray
    stderr: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def project_efficient(values: np.ndarray, stderr: np.ndarray, total: float) -> tuple[np.ndarray, np.ndarray, bool]:
    """Make ``values`` sum to ``total``.

    The gap is shared in proportion to each value's variance (the least-squares
    projection under the estimator's own uncertainty: precisely known values barely
    move), and the standard errors become those of the projected estimate,
    ``var_i - var_i^2 / Σ var``. With no variance information the gap is split equally.
    The projection counts as applied (``projected``) only when the gap was above
    floating-point noise.
    """
    values = np.asarray(values, dtype=np.float64).copy()
    stderr = np.asarray(stderr, dtype=np.float64).copy()
    gap = total - values.sum()
    scale = max(1.0, abs(total), float(np.abs(values).sum()))
    projected = abs(gap) > 1e-12 * scale
    variance = np.where(np.isfinite(stderr), stderr**2, 0.0)
    variance_sum = variance.sum()
    if variance_sum > 0:
        values += variance * (gap / variance_sum)
        stderr = np.sqrt(np.maximum(variance - variance**2 / variance_sum, 0.0))
    else:
        values += gap / values.size
    # A last equal nudge removes the rounding left by the weighted step.
    values += (total - values.sum()) / values.size
    return values, stderr, projected


def shapley_size_weights(n: int) -> np.ndarray:
    """``w[s] = s! (n-s-1)! / n!``: the Shapley weight of a coalition of size s not containing i."""
    return np.array([exp(lgamma(s + 1) + lgamma(n - s) - lgamma(n + 1)) for s in range(n)])


def mean_and_stderr(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means of ``samples`` (k, n) and their standard errors (inf when k < 2)."""
    count = samples.shape[0]
    mean = samples.mean(axis=0)
    if count < 2:
        return mean, np.full(samples.shape[1], np.inf)
    return mean, samples.std(axis=0, ddof=1) / np.sqrt(count)
