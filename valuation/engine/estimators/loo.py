"""Leave-one-out: ``φ_i = U(N) - U(N∖{i})``, n + 2 evaluations, deterministic.

Not a Shapley estimate (it ignores every coalition but the largest); projected to be
efficient like the rest, with the raw values kept in the metadata.
"""

from __future__ import annotations

import numpy as np

from .common import EstimatorContext, RawEstimate

__all__ = ["leave_one_out"]


def leave_one_out(context: EstimatorContext) -> RawEstimate:
    n = context.n
    without_one = ~np.eye(n, dtype=bool)
    values = context.u_grand - context.oracle.evaluate(without_one)
    return RawEstimate(values=values, stderr=np.zeros(n), info={"raw_values": values.copy()})
