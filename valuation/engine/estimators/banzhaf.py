"""Banzhaf values by maximum sample reuse (MSR, Wang & Jia 2023).

Every sampled coalition S informs every player: ``φ_i = mean U(S∋i) - mean U(S∌i)``.
Coalitions are drawn uniformly without replacement, in complement pairs. Banzhaf
values are not efficient; the engine projects them (normalised Banzhaf), and keeps the
raw values in the result's metadata.
"""

from __future__ import annotations

import numpy as np

from ..cache import masks_from_keys
from .common import EstimatorContext, RawEstimate

__all__ = ["banzhaf"]


def banzhaf(context: EstimatorContext) -> RawEstimate:
    n, oracle, rng = context.n, context.oracle, context.rng
    if n <= 25 and oracle.remaining >= 2**n - 2:
        masks = masks_from_keys(np.arange(2**n, dtype=np.int64), n)
        values = oracle.evaluate(masks)
        estimate, _ = _msr(masks, values, n, population=2**n)
        return RawEstimate(values=estimate, stderr=np.zeros(n), info={"raw_values": estimate.copy(), "coalitions": 2**n})
    sampled_masks: list[np.ndarray] = []
    seen: set[bytes] = set()
    target_pairs = int(oracle.remaining // 2)
    stage = target_pairs if context.target_stderr is None else min(target_pairs, max(n, 16))
    drawn = 0
    while True:
        while drawn < stage:
            candidates = rng.random((2 * (stage - drawn), n)) < 0.5
            for mask in candidates:
                key = np.packbits(mask).tobytes()
                if key in seen:
                    continue
                seen.add(key)
                seen.add(np.packbits(~mask).tobytes())
                sampled_masks.append(mask)
                drawn += 1
                if drawn == stage:
                    break
        representatives = np.array(sampled_masks)
        masks = np.concatenate([representatives, ~representatives])
        values = oracle.evaluate(masks)
        estimate, stderr = _msr(masks, values, n, population=2.0**n)
        if stage >= target_pairs or context.precise_enough(stderr):
            break
        stage = min(target_pairs, int(stage * 1.5) + 1)
    return RawEstimate(values=estimate, stderr=stderr, info={"raw_values": estimate.copy(), "coalitions": int(masks.shape[0])})


def _msr(masks: np.ndarray, values: np.ndarray, n: int, *, population: float) -> tuple[np.ndarray, np.ndarray]:
    members = masks.astype(np.float64)
    count_in = members.sum(axis=0)
    count_out = masks.shape[0] - count_in
    sum_in = values @ members
    sum_out = values.sum() - sum_in
    mean_in = sum_in / np.maximum(count_in, 1)
    mean_out = sum_out / np.maximum(count_out, 1)
    square_in = (values**2) @ members
    square_out = (values**2).sum() - square_in
    var_in = (square_in - count_in * mean_in**2) / np.maximum(count_in - 1, 1)
    var_out = (square_out - count_out * mean_out**2) / np.maximum(count_out - 1, 1)
    finite_population = max(1.0 - masks.shape[0] / population, 0.0)
    stderr = np.sqrt(finite_population * (np.maximum(var_in, 0) / np.maximum(count_in, 1) + np.maximum(var_out, 0) / np.maximum(count_out, 1)))
    return mean_in - mean_out, stderr
