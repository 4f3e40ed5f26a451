"""``estimate``: the engine's one entry point.

It validates the request, resolves ``auto``, evaluates ∅ and N, runs the estimator
through a budgeted :class:`~valuation.engine.oracle.CoalitionOracle`, projects the
values onto efficiency and packs a :class:`~valuation.engine.result.ValuationResult`.
Multi-round games (anything with ``rounds`` and ``round_columns``, such as
:class:`~valuation.engine.fl.MultiRoundGame`) are valued round by round, since the
Shapley value of a sum of games is the sum of their values; the result carries the
per-round breakdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .cache import CoalitionCache, InMemoryCoalitionCache
from .estimators.banzhaf import banzhaf
from .estimators.common import EstimatorContext, RawEstimate, project_efficient
from .estimators.exact import MAX_EXACT_PLAYERS, exact
from .estimators.kernel import kernel_shap
from .estimators.loo import leave_one_out
from .estimators.permutation import antithetic_permutations, truncated_permutations
from .estimators.stratified import stratified
from .estimators.taylor import supports_taylor, taylor_control_variate
from .oracle import CoalitionOracle, validate_game
from .result import ValuationResult

__all__ = ["estimate", "METHODS", "default_budget", "EXACT_WITHOUT_BUDGET_PLAYERS"]

# With no budget, auto is exact up to this many players (16,384 coalitions).
EXACT_WITHOUT_BUDGET_PLAYERS = 14
# With a tolerance and no budget, sampling stops here at the latest.
TOLERANCE_CEILING = 1_000_000
# GTG-Shapley: rounds whose total change is below this share of the largest are skipped.
GTG_ROUND_TRUNCATION = 0.01


@dataclass(frozen=True)
class Method:
    run: Callable[[EstimatorContext], RawEstimate]
    minimum_budget: Callable[[int], int]


def _capped(count: Callable[[int], int]) -> Callable[[int], int]:
    return lambda n: min(count(n), 2**n) if n < 63 else count(n)


METHODS: dict[str, Method] = {
    "exact": Method(exact, lambda n: 2**n),
    "permutation": Method(antithetic_permutations, _capped(lambda n: 2 * n)),
    "tmc": Method(truncated_permutations, _capped(lambda n: n + 1)),
    "gtg": Method(partial(truncated_permutations, guided=True), _capped(lambda n: n + 1)),
    "kernel": Method(kernel_shap, _capped(lambda n: n + 2)),
    "stratified": Method(stratified, _capped(lambda n: 2 * n + 2)),
    "taylor": Method(taylor_control_variate, _capped(lambda n: 2 * n + 2)),
    "banzhaf": Method(banzhaf, _capped(lambda n: 4)),
    "loo": Method(leave_one_out, _capped(lambda n: n + 2)),
}
ALIASES = {"control_variate": "taylor"}


def default_budget(n: int) -> int:
    """Budget used when neither ``budget`` nor ``tolerance`` is given and exact is too dear."""
    return min(2**n, max(2048, 64 * n)) if n < 63 else max(2048, 64 * n)


def estimate(
    game: Any,
    *,
    method: str = "auto",
    budget: int | None = None,
    tolerance: float | None = None,
    seed: int = 0,
    cache: CoalitionCache | None = None,
) -> ValuationResult:
    """Value the players of ``game``; see docs/valuation.md for every method's guarantees."""
    n = validate_game(game)
    requested = ALIASES.get(method, method)
    if requested != "auto" and requested not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected 'auto' or one of {sorted([*METHODS, *ALIASES])}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1):
        raise ValueError(f"budget must be a positive integer or None, got {budget!r}")
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a positive number or None, got {tolerance!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    cache = InMemoryCoalitionCache() if cache is None else cache
    budget = None if budget is None else int(budget)
    if hasattr(game, "rounds") and hasattr(game, "round_columns"):
        return _estimate_rounds(game, method=method, requested=requested, budget=budget, tolerance=tolerance, seed=int(seed), cache=cache)
    oracle = CoalitionOracle(game, cache=cache, budget=budget)
    run = _Run(game, oracle, requested, budget, tolerance, np.random.Generator(np.random.PCG64(int(seed))))
    run.evaluate_ends()
    run.value(target_stderr=None if tolerance is None else tolerance * run.scale)
    return ValuationResult(
        values=run.values,
        stderr=run.stderr,
        evaluations=oracle.evaluations,
        method=run.method,
        seed=int(seed),
        budget=budget,
        tolerance=tolerance,
        utility_empty=run.u_empty,
        utility_grand=run.u_grand,
        projected=run.projected,
        metadata={"requested_method": method, "computed_evaluations": oracle.computed, "n_players": n, **run.info},
    )


class _Run:
    """One game valued with one method through one oracle."""

    def __init__(self, game, oracle: CoalitionOracle, requested: str, budget: int | None, tolerance, rng) -> None:
        self.game, self.oracle, self.requested = game, oracle, requested
        self.budget, self.tolerance, self.rng = budget, tolerance, rng
        self.n = oracle.n_players
        self.info: dict[str, Any] = {}

    @property
    def scale(self) -> float:
        total = abs(self.u_grand - self.u_empty)
        return total if total > 0 else max(abs(self.u_grand), abs(self.u_empty), 1.0)

    def evaluate_ends(self) -> None:
        if self.budget is not None and self.budget < 2 and self.n > 0:
            raise ValueError(f"budget {self.budget} is below the minimum of 2 (the empty and grand coalitions)")
        ends = self.oracle.evaluate(np.array([[False] * self.n, [True] * self.n]))
        self.u_empty, self.u_grand = float(ends[0]), float(ends[1])

    def value(self, *, target_stderr: float | None) -> None:
        n, total = self.n, self.u_grand - self.u_empty
        self.method = self._resolve()
        if n == 1:
            self.values, self.stderr, self.projected = np.array([total]), np.zeros(1), False
            return
        minimum = METHODS[self.method].minimum_budget(n)
        if self.budget is not None and self.budget < minimum:
            raise ValueError(f"budget {self.budget} is below the minimum of {minimum} for method {self.method!r} with {n} players")
        if self.method == "exact" and n > MAX_EXACT_PLAYERS:
            raise ValueError(f"exact valuation is limited to {MAX_EXACT_PLAYERS} players, got {n}")
        if self.budget is None and self.method != "exact":
            self.oracle.budget = TOLERANCE_CEILING if self.tolerance is not None else default_budget(n)
            if n < 63:
                self.oracle.budget = min(self.oracle.budget, 2**n)
            self.info["budget_used_as_ceiling"] = self.oracle.budget
        context = EstimatorContext(self.game, self.oracle, self.rng, self.u_empty, self.u_grand, target_stderr)
        raw = METHODS[self.method].run(context)
        stderr = np.where(np.isfinite(raw.stderr), raw.stderr, np.abs(raw.values))  # one sample: crude bound
        self.values, self.stderr, self.projected = project_efficient(raw.values, stderr, total)
        self.info.update({k: v for k, v in raw.info.items() if not k.startswith("_")})

    def _resolve(self) -> str:
        if self.requested != "auto":
            return self.requested
        n, budget = self.n, self.budget
        exact_is_cheap = n <= MAX_EXACT_PLAYERS and (
            (budget is None and n <= EXACT_WITHOUT_BUDGET_PLAYERS) or (budget is not None and budget >= 2**n)
        )
        if exact_is_cheap:
            return "exact"
        preferred = "taylor" if supports_taylor(self.game) else "stratified"
        for candidate in (preferred, "permutation", "tmc"):
            if budget is None or budget >= METHODS[candidate].minimum_budget(n):
                return candidate
        return preferred  # value() will explain that the budget is too small


def _estimate_rounds(game, *, method, requested, budget, tolerance, seed, cache) -> ValuationResult:
    rounds, columns, n_total = game.rounds, game.round_columns, game.n_players
    oracles = [
        CoalitionOracle(r, cache=cache, budget=None, bit_positions=np.asarray(c), key_offset=t << n_total)
        for t, (r, c) in enumerate(zip(rounds, columns))
    ]
    runs = [
        _Run(r, o, requested, None, tolerance, np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, t]))))
        for t, (r, o) in enumerate(zip(rounds, oracles))
    ]
    if budget is not None and budget < 2 * len(runs):
        raise ValueError(f"budget {budget} is below the minimum of {2 * len(runs)} (two coalitions per round)")
    for run in runs:
        run.evaluate_ends()
    changes = np.array([abs(r.u_grand - r.u_empty) for r in runs])
    total = float(sum(r.u_grand - r.u_empty for r in runs))
    skipped = np.zeros(len(runs), dtype=bool)
    if requested == "gtg" and changes.max() > 0:
        skipped = changes < GTG_ROUND_TRUNCATION * changes.max()  # GTG between-round truncation
    active = [t for t in range(len(runs)) if not skipped[t]]
    if budget is not None:
        _split_budget(runs, active, changes, budget)
    scale = abs(total) if total != 0 else 1.0
    target = None if tolerance is None else tolerance * scale / math.sqrt(max(len(active), 1))
    per_round = np.zeros((len(runs), n_total))
    variance = np.zeros(n_total)
    methods, projected = [], False
    for t, run in enumerate(runs):
        if skipped[t]:
            run.method, run.values, run.stderr = "gtg", np.full(run.n, (run.u_grand - run.u_empty) / run.n), np.zeros(run.n)
        else:
            run.value(target_stderr=target)
            projected |= run.projected
        per_round[t, columns[t]] = run.values
        variance[columns[t]] += run.stderr**2
        methods.append(run.method)
    distinct = sorted(set(methods))
    return ValuationResult(
        values=per_round.sum(axis=0),
        stderr=np.sqrt(variance),
        evaluations=sum(o.evaluations for o in oracles),
        method=distinct[0] if len(distinct) == 1 else "+".join(distinct),
        seed=seed,
        budget=budget,
        tolerance=tolerance,
        utility_empty=float(sum(r.u_empty for r in runs)),
        utility_grand=float(sum(r.u_grand for r in runs)),
        projected=projected,
        per_round=per_round,
        metadata={
            "requested_method": method,
            "computed_evaluations": sum(o.computed for o in oracles),
            "round_methods": methods,
            "round_evaluations": [o.evaluations for o in oracles],
            "skipped_rounds": np.flatnonzero(skipped).tolist(),
            "n_players": n_total,
        },
    )


# Share of the budget beyond the end coalitions spent on pilots that measure how
# variable each round is; the rest follows the measured variances.
PILOT_SHARE = 0.1


def _split_budget(runs: list[_Run], active: list[int], changes: np.ndarray, budget: int) -> None:
    """Give each round its two end coalitions, then split the rest so that the total
    variance ``Σ_t σ_t² / B_t`` is least: ``B_t ∝ σ_t`` (Neyman allocation).

    σ_t is measured by a pilot estimate of each round: its method's minimum plus a share
    of ``PILOT_SHARE`` of the budget in proportion to how much utility the round moves
    (a round's absolute error scales with its |U(N) - U(∅)|). The pilot's coalitions
    stay known to the round's oracle and count against its budget; the final estimate
    reuses those it draws again (the border strata always), and its values replace the
    pilot's (merging them would count the shared coalitions twice). When the budget
    cannot pay every round's minimum twice, there are no pilots and the |ΔU| split is
    the allocation.
    """
    for run in runs:
        run.budget = run.oracle.budget = 2
    spare = budget - 2 * len(runs)
    if not active or spare <= 0:
        return
    caps = np.array([_coalition_count(runs[t].n) for t in active], dtype=np.float64)
    prior = changes[active] if changes[active].sum() > 0 else np.ones(len(active))
    minimums = np.minimum([_pilot_minimum(runs[t]) for t in active], caps)
    if 2 * minimums.sum() > spare:
        _assign(runs, active, _proportional(spare, prior, caps))
        return
    pilots = _proportional(max(spare * PILOT_SHARE, minimums.sum()), prior, caps, floor=minimums)
    _assign(runs, active, pilots)
    spread = np.zeros(len(active))
    for position, t in enumerate(active):
        run = runs[t]
        run.value(target_stderr=None)
        # σ_t per unit of budget: variance times budget is about constant for sampling.
        spread[position] = float(np.sqrt(np.sum(run.stderr**2) * max(run.oracle.evaluations, 1)))
    if spread.sum() <= 0:
        spread = prior
    floor = np.minimum(pilots + minimums, caps)  # a round sampled again gets its minimum
    _assign(runs, active, _proportional(spare, spread, caps, floor=floor))


def _coalition_count(n: int) -> float:
    return float(2**n) - 2 if n < 63 else math.inf


def _pilot_minimum(run: _Run) -> int:
    method = run._resolve()
    return METHODS[method].minimum_budget(run.n) - 2 if method != "exact" else 0


def _proportional(total: float, weights: np.ndarray, caps: np.ndarray, floor: np.ndarray | None = None) -> np.ndarray:
    """Integers summing to ``min(total, Σ caps)`` (beyond ``floor``) in proportion to
    ``weights``, each between its floor and its cap (water-filling)."""
    total = int(total)
    low = np.zeros(weights.size) if floor is None else np.asarray(floor, dtype=np.float64)
    share = low.copy()
    open_ = share < caps
    left = total - share.sum()
    while left > 0.5 and open_.any():
        weight = np.where(open_, np.maximum(weights, 0), 0.0)
        if weight.sum() <= 0:
            weight = open_.astype(np.float64)
        target = share + left * weight / weight.sum()
        share = np.minimum(target, caps)
        left = total - share.sum()
        open_ = share < caps
    whole = np.floor(share)
    spare = int(min(total, caps.sum()) - whole.sum())
    for index in np.argsort(-(share - whole), kind="stable"):
        if spare <= 0:
            break
        if whole[index] < caps[index]:
            whole[index] += 1
            spare -= 1
    return whole.astype(np.int64)


def _assign(runs: list[_Run], active: list[int], shares: np.ndarray) -> None:
    for t, share in zip(active, shares):
        runs[t].budget = runs[t].oracle.budget = int(2 + share)
