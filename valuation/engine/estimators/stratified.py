"""Our stratified regression estimator for black-box games.

Design (which coalitions): the Shapley value of player i is
``φ_i = (1/n) Σ_{s=1}^{n-1} (μ⁺_{i,s} - μ⁻_{i,s}) + (U(N) - U(∅)) / n`` where μ⁺ / μ⁻ are
the mean utilities of size-s coalitions with / without i. We sample each size stratum
without replacement, always in complement pairs (S, N∖S) so every draw informs two
strata with perfectly balanced membership; the border strata (sizes 1 and n-1) are
enumerated first, then the budget is water-filled over the rest in proportion to
``1/sqrt(s (n-s))`` (the Neyman allocation when strata are equally variable), capped
at each stratum's size, so small strata end up enumerated exactly.

Estimate (what we do with them): a model-assisted (GREG) estimator. A constrained,
kernel-weighted least-squares additive model β (the KernelSHAP regression on the same
sample) explains most of the utility; β is its exact Shapley value, and the stratified
mean differences are applied only to the residual ``U - Σ_{j∈S} β_j``, which is small
for near-additive games. Enumerated strata contribute exactly; sampled ones with a
finite-population-corrected variance, which gives the per-player standard error.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb, sqrt

import numpy as np

from ..oracle import CoalitionOracle
from .common import EstimatorContext, RawEstimate

__all__ = ["PairedStratifiedDesign", "draw_unseen", "greg_shapley", "stratified"]

# Strata up to this many coalitions are shuffled in full (exact sampling without
# replacement, nested across budgets); larger ones use rejection sampling.
_ENUMERATE_LIMIT = 200_000


class PairedStratifiedDesign:
    """A growing sample of complement pairs, stratified by coalition size."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.rng = rng
        self.pair_sizes = list(range(1, n // 2 + 1))  # size k is paired with size n-k
        self.capacity = {k: comb(n, k) // 2 if 2 * k == n else comb(n, k) for k in self.pair_sizes}
        self.weight = {k: 1.0 / sqrt(k * (n - k)) for k in self.pair_sizes}
        self.taken = {k: 0 for k in self.pair_sizes}
        self.masks: dict[int, list[np.ndarray]] = {}
        self.values: dict[int, list[np.ndarray]] = {}
        # The same draws as complement pairs: per pair size k, the size-k representative
        # and the utilities of it and of its complement.
        self._pair_blocks: dict[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._shuffled: dict[int, np.ndarray] = {}
        self._seen: dict[int, set[bytes]] = {}

    def reweight(self, spread: dict[int, float]) -> None:
        """Neyman allocation from measured residual spreads (see ``run_design``)."""
        n = self.n
        measured = {}
        for k in self.pair_sizes:
            values = [spread.get(size, np.nan) for size in {k, n - k}]
            values = [v for v in values if np.isfinite(v)]
            if values:
                measured[k] = float(np.sqrt(np.mean(np.square(values))))
        if not measured or max(measured.values()) <= 0:
            return
        typical = float(np.median(list(measured.values())))
        floor = 0.1 * max(measured.values())  # noisy small samples must not starve a stratum
        for k in self.pair_sizes:
            self.weight[k] = max(measured.get(k, typical), floor) / sqrt(k * (n - k))

    @property
    def pairs_taken(self) -> int:
        return sum(self.taken.values())

    @property
    def complete(self) -> bool:
        return all(self.taken[k] == self.capacity[k] for k in self.pair_sizes)

    def allocate(self, total_pairs: int) -> dict[int, int]:
        """Pairs per stratum for ``total_pairs`` overall: border strata first, then a
        water-filling in proportion to the weights, never below what is already taken."""
        target = dict(self.taken)
        left = total_pairs - sum(target.values())
        if left <= 0 or not self.pair_sizes:
            return target
        border = self.pair_sizes[0]
        top_up = min(left, self.capacity[border] - target[border])
        target[border] += top_up
        left -= top_up
        level = {k: float(target[k]) for k in self.pair_sizes}
        open_sizes = [k for k in self.pair_sizes if level[k] < self.capacity[k]]
        while left > 1e-9 and open_sizes:
            weight_sum = sum(self.weight[k] for k in open_sizes)
            spent = 0.0
            for k in open_sizes:
                grant = min(left * self.weight[k] / weight_sum, self.capacity[k] - level[k])
                level[k] += grant
                spent += grant
            left -= spent
            open_sizes = [k for k in open_sizes if level[k] < self.capacity[k] - 1e-9]
            if spent <= 1e-12:
                break
        # Integer pairs: floors, then the largest fractional parts (ties to small sizes).
        floors = {k: int(np.floor(level[k] + 1e-9)) for k in self.pair_sizes}
        spare = total_pairs - sum(floors.values())
        by_fraction = sorted(self.pair_sizes, key=lambda k: (-(level[k] - floors[k]), k))
        for k in by_fraction:
            if spare <= 0:
                break
            if floors[k] < self.capacity[k]:
                floors[k] += 1
                spare -= 1
        return floors

    def grow(self, oracle: CoalitionOracle, total_pairs: int) -> None:
        """Draw and evaluate pairs until ``total_pairs`` (or the capacity) is reached."""
        target = self.allocate(min(total_pairs, sum(self.capacity.values())))
        new_masks = []
        for k in self.pair_sizes:
            count = target[k] - self.taken[k]
            if count <= 0:
                continue
            representatives = self._draw(k, count)
            self.taken[k] += count
            new_masks.append((k, representatives))
        if new_masks:
            self._evaluate_pairs(oracle, new_masks)

    def _evaluate_pairs(self, oracle: CoalitionOracle, batch: list[tuple[int, np.ndarray]]) -> None:
        """Evaluate each ``(k, representatives)`` with its complements in one oracle call
        and record both sides, as strata and as pairs."""
        values = oracle.evaluate(np.concatenate([np.concatenate([r, ~r]) for _, r in batch]))
        offset = 0
        for k, representatives in batch:
            count = representatives.shape[0]
            own, complement = values[offset : offset + count], values[offset + count : offset + 2 * count]
            self._pair_blocks.setdefault(k, []).append((representatives, own, complement))
            for size, block, block_values in ((k, representatives, own), (self.n - k, ~representatives, complement)):
                self.masks.setdefault(size, []).append(block)
                self.values.setdefault(size, []).append(block_values)
            offset += 2 * count

    def _draw(self, k: int, count: int) -> np.ndarray:
        n = self.n
        if comb(n, k) <= _ENUMERATE_LIMIT:
            if k not in self._shuffled:
                masks = _representatives(n, k)
                self._shuffled[k] = masks[self.rng.permutation(masks.shape[0])]
            start = self.taken[k]
            return self._shuffled[k][start : start + count]
        # k = n/2: player 0 always chosen, one representative per pair.
        return draw_unseen(self.rng, n, k, count, self._seen.setdefault(k, set()), hold_player_zero=2 * k == n)

    def pairs(self) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per pair size k ≤ n/2: the representatives (m_k, n), their utilities and their
        complements' utilities, in draw order (for k = n/2 every representative holds
        player 0, so each pair appears once)."""
        return {
            k: tuple(np.concatenate([block[part] for block in blocks]) for part in range(3))
            for k, blocks in self._pair_blocks.items()
        }

    def samples(self) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        masks = {s: np.concatenate(blocks) for s, blocks in self.masks.items()}
        values = {s: np.concatenate(blocks) for s, blocks in self.values.items()}
        return masks, values


def draw_unseen(rng, n: int, size: int, count: int, seen: set[bytes], *, hold_player_zero: bool = False) -> np.ndarray:
    """``count`` uniform size-``size`` coalitions (count, n) whose packed keys are not in
    ``seen`` (which they join): rejection sampling, for strata too large to shuffle."""
    drawn: list[np.ndarray] = []
    while len(drawn) < count:
        scores = rng.random((2 * (count - len(drawn)), n))
        if hold_player_zero:
            scores[:, 0] = -1.0
        masks = np.zeros(scores.shape, dtype=bool)
        np.put_along_axis(masks, np.argsort(scores, axis=1)[:, :size], True, axis=1)
        for mask in masks:
            key = np.packbits(mask).tobytes()
            if key not in seen:
                seen.add(key)
                drawn.append(mask)
                if len(drawn) == count:
                    break
    return np.array(drawn)


@lru_cache(maxsize=256)
def _representatives(n: int, k: int) -> np.ndarray:
    """All size-k coalitions; for k = n/2 only those holding player 0 (one per pair)."""
    combos = [c for c in combinations(range(n), k) if 2 * k != n or c[0] == 0]
    masks = np.zeros((len(combos), n), dtype=bool)
    masks[np.repeat(np.arange(len(combos)), k), np.array(combos, dtype=np.intp).ravel()] = True
    masks.flags.writeable = False
    return masks


def greg_shapley(
    n: int,
    masks: dict[int, np.ndarray],
    values: dict[int, np.ndarray],
    u_empty: float,
    u_grand: float,
    *,
    working_model: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Shapley estimate and standard errors from a size-stratified sample (see module doc).

    ``working_model=False`` leaves out the additive KernelSHAP model (β = 0): the right
    choice when the utilities are already residuals of a good control variate and the
    sample is small next to n, where fitting n coefficients would mostly fit noise (and
    make the standard errors too small). The per-stratum sums are taken one stratum at
    a time, so memory stays O(draws per stratum × n) for any number of players.
    """
    total = u_grand - u_empty
    sizes = [s for s in range(1, n) if s in masks and masks[s].shape[0] > 0]
    beta = np.zeros(n)
    if sizes and working_model:
        beta = _kernel_regression(n, masks, values, sizes, u_empty, total)
    estimate = beta + (total - beta.sum()) / n
    if not sizes:
        return estimate, np.zeros(n)
    k = len(sizes)
    draws = np.array([masks[s].shape[0] for s in sizes], dtype=np.float64)
    count_in, sum_in, square_in = np.zeros((k, n)), np.zeros((k, n)), np.zeros((k, n))
    sum_all, square_all = np.zeros(k), np.zeros(k)
    residuals = []
    for row, size in enumerate(sizes):
        member = masks[size].astype(np.float64)
        residual = values[size] - u_empty - member @ beta
        residuals.append(residual)
        count_in[row] = member.sum(axis=0)
        sum_in[row] = residual @ member
        square_in[row] = (residual**2) @ member
        sum_all[row], square_all[row] = residual.sum(), residual @ residual
    count_out = draws[:, None] - count_in
    sum_out, square_out = sum_all[:, None] - sum_in, square_all[:, None] - square_in
    every = np.concatenate(residuals)
    pooled = every.var() if every.size > 1 else 0.0
    stratum_variance = np.where(draws > 1, (square_all - sum_all**2 / draws) / np.maximum(draws - 1, 1), pooled)
    fallback = np.maximum(stratum_variance, 0.0)[:, None]
    population_in = np.array([comb(n - 1, s - 1) for s in sizes], dtype=np.float64)[:, None]
    population_out = np.array([comb(n - 1, s) for s in sizes], dtype=np.float64)[:, None]
    mean_in, var_in = _mean_var(sum_in, square_in, count_in, population_in, fallback)
    mean_out, var_out = _mean_var(sum_out, square_out, count_out, population_out, fallback)
    known = (count_in > 0) & (count_out > 0)
    estimate = estimate + np.where(known, mean_in - mean_out, 0.0).sum(axis=0) / n
    variance = np.where(known, var_in + var_out, 2 * fallback).sum(axis=0) / n**2
    unsampled = (n - 1) - len(sizes)  # strata never drawn: assume one draw's worth of error
    variance += unsampled * 2 * pooled / n**2
    return estimate, np.sqrt(variance)


def _mean_var(total, squares, count, population, fallback_variance):
    safe = np.maximum(count, 1.0)
    mean = total / safe
    sample_variance = np.where(count > 1, (squares - safe * mean**2) / np.maximum(count - 1, 1.0), fallback_variance)
    finite_population = np.maximum(1.0 - count / population, 0.0)
    return mean, finite_population * np.maximum(sample_variance, 0.0) / safe


def _kernel_regression(n, masks, values, sizes, u_empty, total) -> np.ndarray:
    """KernelSHAP's constrained weighted least squares on the sample: each sampled
    coalition stands for its stratum, weight (n-1) / (s (n-s) draws_s)."""
    design = np.concatenate([masks[s] for s in sizes]).astype(np.float64)
    target = np.concatenate([values[s] for s in sizes]) - u_empty
    weights = np.concatenate([np.full(masks[s].shape[0], (n - 1) / (s * (n - s) * masks[s].shape[0])) for s in sizes])
    gram = design.T @ (design * weights[:, None])
    moment = design.T @ (target * weights)
    ridge = 1e-12 * max(np.trace(gram), 1e-300)
    system = np.zeros((n + 1, n + 1))
    system[:n, :n] = gram + ridge * np.eye(n)
    system[:n, n] = system[n, :n] = 1.0
    right = np.append(moment, total)
    try:
        solution = np.linalg.solve(system, right)
    except np.linalg.LinAlgError:  # players never (or always) sampled: least squares copes
        solution = np.linalg.lstsq(system, right, rcond=None)[0]
    return solution[:n]


def stratified(context: EstimatorContext) -> RawEstimate:
    """Black-box games: pilot, planned pairs or singles, regression estimate with an odd
    Fourier working model (:mod:`.blackbox`, decision 0013)."""
    from .blackbox import stratified_regression  # deferred: .blackbox builds on this module

    return stratified_regression(context)


def stratified_additive(context: EstimatorContext) -> RawEstimate:
    """The previous black-box estimator (decision 0003), kept for comparison: the paired
    design at its default allocation, then the GREG estimate with the additive model."""
    design = run_design(context, adaptive=False)
    masks, values = design.samples()
    estimate, stderr = greg_shapley(context.n, masks, values, context.u_empty, context.u_grand)
    return RawEstimate(values=estimate, stderr=stderr, info={"pairs": design.pairs_taken, "complete": design.complete})


def residual_spread(
    n: int, masks, values, u_empty: float, u_grand: float, *, working_model: bool = True
) -> dict[int, float]:
    """Standard deviation per coalition size of what the working model leaves (nan
    where a size has fewer than two draws): the input of the Neyman allocation."""
    sizes = [s for s in range(1, n) if s in masks and masks[s].shape[0] > 0]
    if not sizes:
        return {}
    beta = _kernel_regression(n, masks, values, sizes, u_empty, u_grand - u_empty) if working_model else np.zeros(n)
    spread = {}
    for size in sizes:
        residual = values[size] - u_empty - masks[size] @ beta
        spread[size] = float(residual.std(ddof=1)) if residual.size > 1 else float("nan")
    return spread


# Share of the sampling budget (beyond the border strata) spent before the allocation
# is re-aimed at the strata whose residuals turned out most variable.
_PILOT_SHARE = 0.4


def run_design(
    context: EstimatorContext, *, estimate_of=None, spread_of=None, adaptive: bool = True
) -> PairedStratifiedDesign:
    """Grow the design to the budget in two phases, or in stages until ``target_stderr``.

    Phase one spends a pilot share with the default allocation; then each stratum's
    weight becomes ``σ_s / sqrt(s (n-s))`` with σ_s the residual spread measured so far
    (Neyman allocation), and the rest of the budget follows it. ``estimate_of(design)
    -> stderr`` and ``spread_of(design) -> {size: σ}`` let a caller (the control-variate
    estimator) judge precision and spread on its own residual.
    """
    n, oracle = context.n, context.oracle
    design = PairedStratifiedDesign(n, context.rng)

    def affordable() -> int:
        return design.pairs_taken + int(min(oracle.remaining, 2 * sum(design.capacity.values())) // 2)

    if spread_of is None:

        def spread_of(d):
            masks, values = d.samples()
            return residual_spread(n, masks, values, context.u_empty, context.u_grand)

    if estimate_of is None:

        def estimate_of(d):
            masks, values = d.samples()
            return greg_shapley(n, masks, values, context.u_empty, context.u_grand)[1]

    ceiling = affordable()
    border = design.capacity[design.pair_sizes[0]] if design.pair_sizes else 0
    if context.target_stderr is None:
        pilot = border + int(_PILOT_SHARE * (ceiling - border))
        if adaptive and ceiling - border >= 4 * len(design.pair_sizes) and pilot < ceiling:
            design.grow(oracle, pilot)
            design.reweight(spread_of(design))
        design.grow(oracle, ceiling)
        # Coalitions the oracle already knew (a multi-round pilot's) were free: spend
        # what they left of the budget too.
        while not design.complete and affordable() > design.pairs_taken:
            before = design.pairs_taken
            design.grow(oracle, affordable())
            if design.pairs_taken == before:
                break
        return design
    stage = max(n, 8)
    while True:
        design.grow(oracle, min(stage, ceiling))
        if design.complete or design.pairs_taken >= ceiling or context.precise_enough(estimate_of(design)):
            return design
        if adaptive:
            design.reweight(spread_of(design))
        ceiling = affordable()
        stage = int(stage * 1.5) + 1
