"""Order-independent FedAvg aggregation of participants' contributions.

A coalition's aggregate is ``base + (Σ_{i∈S} n_i t_i) / n_S`` (``base`` for ∅) for
per-participant terms ``t_i`` (output-space scores ``X·Δ_i`` or flattened parameter
updates). Floating-point sums depend on their order, and BLAS picks the order by the
shape of the batch: a coalition's utility would change in the last bit with the
company it was evaluated in, and cached utilities would stop being reproducible.

So the summands ``n_i (t_i + base)`` are rounded once, up front, to a fixed-point grid
just fine enough that *every* subset sum is exactly representable in float64 (52 bits
minus what the largest possible sum needs). Then any summation — a BLAS matmul over
any batch, or the doubling used to enumerate blocks — gives identical bits, and the
only rounding left is the final division by n_S, done elementwise. The grid costs a
relative change of about 2^-45 in the aggregate, far below any metric's resolution.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["AffineOutputs", "CoalitionAggregator", "exact_sum_grid"]


def exact_sum_grid(values: np.ndarray, n_summands: int) -> np.ndarray:
    """``values`` rounded to the finest power-of-two grid on which any sum of up to
    ``n_summands`` of them (one per row) is exact in float64."""
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest == 0.0:
        return np.zeros_like(values, dtype=np.float64)
    headroom = math.ceil(math.log2(largest * max(n_summands, 1))) + 1
    fraction_bits = 52 - headroom
    return np.ldexp(np.round(np.ldexp(values, fraction_bits)), -fraction_bits)


class CoalitionAggregator:
    def __init__(self, terms: np.ndarray, counts: np.ndarray, base: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.float64)
        self.n_players = counts.size
        self.base = np.asarray(base, dtype=np.float64)
        self.counts = exact_sum_grid(counts, self.n_players)
        # base + Σ n_i t_i / n_S == Σ n_i (t_i + base) / n_S for non-empty S: folding
        # the base into the terms saves a pass per coalition.
        summands = (np.asarray(terms, dtype=np.float64) + self.base) * counts[:, None]
        self.scaled = exact_sum_grid(summands, self.n_players)

    def combine(self, coalitions: np.ndarray) -> np.ndarray:
        """Aggregates (c, L) of bool coalitions (c, n): one matmul, exact sums."""
        members = np.asarray(coalitions, dtype=np.float64)
        return self._finish(members @ self.scaled, members @ self.counts)

    def block(self, high: int, low_bits: int) -> np.ndarray:
        """Aggregates of the 2^low_bits coalitions ``high | low`` (``high`` has its low
        ``low_bits`` bits clear), row ``low`` for each ``low``: built by doubling, one
        addition per coalition and element."""
        size = 1 << low_bits
        total = np.zeros((size, self.scaled.shape[1]))
        weight = np.zeros(size)
        for player in range(low_bits, self.n_players):
            if (high >> player) & 1:
                total[0] += self.scaled[player]
                weight[0] += self.counts[player]
        for player in range(low_bits):
            step = 1 << player
            # Rows below `step` hold every subset of the lower bits; adding this player
            # to each gives the rows from `step` to 2*step.
            np.add(total[:step], self.scaled[player], out=total[step : 2 * step])
            np.add(weight[:step], self.counts[player], out=weight[step : 2 * step])
        return self._finish(total, weight)

    def _finish(self, total: np.ndarray, weight: np.ndarray) -> np.ndarray:
        inverse = np.divide(1.0, weight, out=np.zeros_like(weight), where=weight > 0)
        total *= inverse[:, None]
        total[weight == 0] = self.base  # the empty coalition: the global model
        return total


class AffineOutputs:
    """Outputs ``offset + Σ_q θ_q basis_q`` of a model that is affine in its flat
    parameters θ (c, P), accumulated one parameter at a time in a fixed order.

    With many participants and few parameters, aggregating the coalition's parameters
    (n·P per coalition) and then predicting (P·L) is far cheaper than aggregating
    outputs (n·L). A BLAS matmul would be cheaper still, but its summation order
    depends on the batch; elementwise passes keep every coalition's bits independent
    of its company, as the exact sums above do.
    """

    def __init__(self, basis: np.ndarray, offset: np.ndarray) -> None:
        self.basis = np.asarray(basis, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)

    def __call__(self, parameters: np.ndarray) -> np.ndarray:
        outputs = np.empty((parameters.shape[0], self.offset.size))
        outputs[:] = self.offset
        scratch = np.empty_like(outputs)
        for q in range(self.basis.shape[0]):
            np.multiply(parameters[:, q : q + 1], self.basis[q], out=scratch)
            outputs += scratch
        return outputs
