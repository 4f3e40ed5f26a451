"""Permutation sampling: antithetic (Castro et al. 2009), truncated Monte Carlo
(Ghorbani & Zou 2019) and the guided, truncated variant used by GTG-Shapley.

A player's marginal contribution along a random order is an unbiased sample of its
Shapley value. Every coalition goes through the oracle, so the empty and grand
coalitions and any repeated prefix are evaluated (and counted) once.
"""

from __future__ import annotations

import numpy as np

from .common import EstimatorContext, RawEstimate, mean_and_stderr

__all__ = ["antithetic_permutations", "truncated_permutations", "MAX_PERMUTATIONS"]

# Sampling stops when a whole batch found no new coalition (everything is cached, so
# more orders would only re-weight known values) or at this many orders.
MAX_PERMUTATIONS = 200_000


def _prefix_masks(orders: np.ndarray) -> np.ndarray:
    """Bool (p, n+1, n): row j of order k is the set of its first j players."""
    n = orders.shape[1]
    position = np.empty_like(orders)
    np.put_along_axis(position, orders, np.arange(n)[None, :], axis=1)
    return position[:, None, :] < np.arange(n + 1)[None, :, None]


def _marginals(orders: np.ndarray, prefix_values: np.ndarray) -> np.ndarray:
    """Marginal contribution (p, n) of each player along each order."""
    steps = np.diff(prefix_values, axis=1)
    marginals = np.empty_like(steps)
    np.put_along_axis(marginals, orders, steps, axis=1)
    return marginals


def antithetic_permutations(context: EstimatorContext) -> RawEstimate:
    """Orders come in pairs (π, reversed π); each pair's mean marginal is one sample.

    Each sample's marginals sum to U(N) - U(∅), so the estimate is efficient as it stands.
    """
    oracle, rng, n = context.oracle, context.rng, context.n
    samples: list[np.ndarray] = []
    batch_pairs = 8
    pairs_done = 0
    while pairs_done < MAX_PERMUTATIONS // 2:
        orders = rng.permuted(np.tile(np.arange(n), (batch_pairs, 1)), axis=1)
        both = np.concatenate([orders[:, None, :], orders[:, None, ::-1]], axis=1).reshape(-1, n)
        masks = _prefix_masks(both).reshape(-1, n)
        keys = oracle.keys(masks)
        per_pair = 2 * (n + 1)
        accepted, new_keys = 0, set()
        for pair in range(batch_pairs):
            candidate = {k for k in keys[pair * per_pair : (pair + 1) * per_pair] if not oracle.is_known(k)}
            if len(new_keys | candidate) > oracle.remaining:
                break
            new_keys |= candidate
            accepted += 1
        if accepted == 0:
            break
        rows = accepted * per_pair
        values = oracle.evaluate(masks[:rows], keys[:rows]).reshape(2 * accepted, n + 1)
        marginals = _marginals(both[: 2 * accepted], values)
        samples.append(0.5 * (marginals[0::2] + marginals[1::2]))
        pairs_done += accepted
        mean, stderr = mean_and_stderr(np.concatenate(samples))
        if accepted < batch_pairs or not new_keys or context.precise_enough(stderr):
            break
        batch_pairs = min(2 * batch_pairs, 256)
    if not samples:
        raise ValueError("the budget does not cover one antithetic pair of permutations")
    mean, stderr = mean_and_stderr(np.concatenate(samples))
    return RawEstimate(values=mean, stderr=stderr, info={"permutations": 2 * pairs_done})


def truncated_permutations(
    context: EstimatorContext, *, truncation: float = 0.005, guided: bool = False
) -> RawEstimate:
    """Walk each order until the prefix's utility is within ``truncation * |U(N) - U(∅)|``
    of U(N); the remaining players' marginals are taken as zero (not evaluated).

    ``guided`` (GTG-Shapley) makes order k start with player k mod n, so every player
    leads equally often and early, informative positions are covered evenly.
    """
    oracle, rng, n = context.oracle, context.rng, context.n
    threshold = truncation * abs(context.total)
    samples: list[np.ndarray] = []
    started = 0
    batch = 8
    while started < MAX_PERMUTATIONS:
        # Reserve the worst case (n - 1 new coalitions per order) so no order is cut short.
        batch = int(min(batch, oracle.remaining // max(n - 1, 1)))
        if batch < 1:
            break
        orders = rng.permuted(np.tile(np.arange(n), (batch, 1)), axis=1)
        if guided:
            # Swap player (k mod n) to the front of order k: the others stay uniformly shuffled.
            leaders = (started + np.arange(batch)) % n
            rows = np.arange(batch)
            where = np.argmax(orders == leaders[:, None], axis=1)
            orders[rows, where] = orders[:, 0]
            orders[:, 0] = leaders
        started += batch
        completed, any_new = _walk_orders(context, orders, threshold)
        if completed.size:
            samples.append(completed)
        if not samples:
            break
        mean, stderr = mean_and_stderr(np.concatenate(samples))
        if not any_new or context.precise_enough(stderr):
            break
        batch = min(2 * batch, 256)
    if not samples:
        raise ValueError("the budget does not cover one permutation")
    stacked = np.concatenate(samples)
    mean, stderr = mean_and_stderr(stacked)
    return RawEstimate(values=mean, stderr=stderr, info={"permutations": int(stacked.shape[0]), "truncation": truncation})


def _walk_orders(context: EstimatorContext, orders: np.ndarray, threshold: float) -> tuple[np.ndarray, bool]:
    """Evaluate prefixes position by position for a batch of orders (one oracle call per
    position); orders that would overrun the budget are dropped, not half-counted."""
    oracle, n = context.oracle, context.n
    count = orders.shape[0]
    marginals = np.zeros((count, n))
    previous = np.full(count, context.u_empty)
    active = np.ones(count, dtype=bool)
    alive = np.ones(count, dtype=bool)
    members = np.zeros((count, n), dtype=bool)
    any_new = False
    for position in range(n):
        players = orders[:, position]
        members[np.arange(count), players] = True
        walking = np.flatnonzero(active & alive)
        if walking.size == 0:
            break
        if position == n - 1:
            current = np.full(walking.size, context.u_grand)
        else:
            masks = members[walking]
            keys = oracle.keys(masks)
            seen: set[int] = set()
            keep = walking.size
            for row, key in enumerate(keys):
                if not oracle.is_known(key) and key not in seen:
                    if len(seen) + 1 > oracle.remaining:
                        keep = row
                        break
                    seen.add(key)
            alive[walking[keep:]] = False
            walking, masks, keys = walking[:keep], masks[:keep], keys[:keep]
            any_new |= bool(seen)
            current = oracle.evaluate(masks, keys) if keep else np.zeros(0)
        marginals[walking, players[walking]] = current - previous[walking]
        previous[walking] = current
        active[walking] = np.abs(context.u_grand - current) > threshold
    return marginals[alive], any_new
