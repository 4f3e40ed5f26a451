"""The FL-structure estimator: a Taylor surrogate as a control variate.

In an FL round a coalition's utility is a smooth function G of its FedAvg mixing
weights p(S) (``w + Σ p_i Δ_i``). A second-order expansion of G around the grand
coalition's mixture, ``Ĝ(p) = G0 + g·(p - p_N) + ½ (p - p_N)ᵀ H (p - p_N)``, costs
2n² + 1 model evaluations at *mixtures* (not coalitions: no budget is spent; the
linear-in-weights families get it analytically in output space) and is then valued
exactly: by enumerating all coalitions of the cheap quadratic for n ≤ 20, by a
two-dimensional quadrature to ~1e-12 for any n (:mod:`.mixture_shapley`), so nothing
but the residual is sampled and the error keeps falling with the budget. Sampling is
spent only on the residual game
``U - β Ĝ`` with our stratified regression estimator, so the error is that of
estimating a small residual:

    φ(U) = Σ_j β_j φ(F_j) [exact] + φ̂(U - Σ_j β_j F_j) [sampled].

The features F_j are the surrogates (for log-loss and RMSE the Taylor expansion of the
metric itself; for step metrics (accuracy, F1, AUC) of smoothed proxies, plus the
log-loss) and, for n ≤ 20, each surrogate times |S|/n; the weights β are fitted by
least squares on the evaluated coalitions (any fixed β keeps the estimator valid: the
fit only makes the residual small). Any game exposing ``mixture_weights`` and
``smooth_utility`` (see :class:`~valuation.engine.fl.FLRoundGame`) can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cache import masks_from_keys
from ..expansions import central_difference_derivatives, central_difference_offsets
from .common import EstimatorContext, RawEstimate
from .exact import popcounts, shapley_from_table
from .mixture_shapley import MixtureQuadratic, mixture_quadratic_shapley
from .stratified import greg_shapley, residual_spread, run_design

__all__ = ["QuadraticSurrogate", "taylor_control_variate", "supports_taylor"]

_EXACT_SURROGATE_PLAYERS = 20
# The residual's additive working model (n coefficients, O(draws n²) to fit) pays only
# with many draws per player; with few it fits noise and shrinks the standard errors
# (measured on typed rounds: n = 80 at 5 draws per player, coverage 46 % with it and
# 95 % without; n = 50 at 200 per player, error 0.0007 with it and 0.0016 without).
_ADDITIVE_MODEL_DRAWS_PER_PLAYER = 50
_ADDITIVE_MODEL_MAX_PLAYERS = 200


def supports_taylor(game) -> bool:
    return callable(getattr(game, "mixture_weights", None)) and callable(getattr(game, "smooth_utility", None))


@dataclass(frozen=True)
class QuadraticSurrogate:
    """``Ĝ(S) = constant + g·c + ½ cᵀ H c`` with ``c = p(S) - p(N)``."""

    anchor: np.ndarray
    constant: float
    gradient: np.ndarray
    hessian: np.ndarray
    origin: str = "analytic"

    @classmethod
    def for_game(cls, game) -> list["QuadraticSurrogate"]:
        """The game's analytic expansions where it has them, else one numeric one."""
        analytic = game.taylor_expansions() if callable(getattr(game, "taylor_expansions", None)) else None
        if analytic:
            return [cls(anchor=a, constant=float(v), gradient=g, hessian=h) for a, v, g, h in analytic]
        return [cls.around_grand_coalition(game)]

    @classmethod
    def around_grand_coalition(cls, game, *, step: float = 1e-3) -> "QuadraticSurrogate":
        # Central differences along the participants' updates: 2n² + 1 mixtures.
        n = game.n_players
        anchor = game.mixture_weights(np.ones((1, n), dtype=bool))[0]
        offsets = central_difference_offsets(n, step)
        center, gradient, hessian = central_difference_derivatives(game.smooth_utility(anchor + offsets), n, step)
        return cls(anchor=anchor, constant=float(center), gradient=gradient, hessian=hessian, origin=f"finite differences ({offsets.shape[0]} mixtures)")

    def of_mixtures(self, mixtures: np.ndarray) -> np.ndarray:
        offsets = mixtures - self.anchor
        return self.constant + offsets @ self.gradient + 0.5 * np.einsum("ij,ij->i", offsets @ self.hessian, offsets)

    def in_mixture_form(self, examples: np.ndarray) -> MixtureQuadratic:
        """The same quadratic around p = 0 with a low-rank Hessian: O(n r) per
        coalition instead of O(n²), and valued by quadrature."""
        return MixtureQuadratic.from_expansion(examples, self.anchor, self.constant, self.gradient, self.hessian)

    def table(self, game) -> np.ndarray:
        """The surrogate at every one of the 2^n coalitions (n ≤ 20: cheap, no model)."""
        n = game.n_players
        table = np.empty(2**n)
        batch = 1 << 16
        for start in range(0, 2**n, batch):
            keys = np.arange(start, min(start + batch, 2**n), dtype=np.int64)
            table[start : start + keys.size] = self.of_mixtures(game.mixture_weights(masks_from_keys(keys, n)))
        return table


def taylor_control_variate(context: EstimatorContext) -> RawEstimate:
    game, n = context.game, context.n
    if not supports_taylor(game):
        raise ValueError("method 'taylor' needs an FL game (mixture_weights and smooth_utility); use 'stratified'")
    surrogates, feature_values, feature_stderr, origin = _surrogates_of(game)
    sized = len(feature_values) > len(surrogates)
    exact_proxy = bool(getattr(game, "smooth_utility_is_exact", False))

    def additive(design) -> bool:
        # Up to 20 players the size-scaled surrogates already bend the fit by size, and
        # the additive model on top costs accuracy (typed round of 20 at 10^5, 6 seeds:
        # error 0.00017 with it, 0.00005 without).
        return not sized and n <= _ADDITIVE_MODEL_MAX_PLAYERS and 2 * design.pairs_taken >= _ADDITIVE_MODEL_DRAWS_PER_PLAYER * n

    def features(coalitions: np.ndarray) -> np.ndarray:
        base = np.stack([surrogate(coalitions) for surrogate in surrogates], axis=1)
        if not sized:
            return base
        return np.concatenate([base, base * (coalitions.sum(axis=1, keepdims=True) / n)], axis=1)

    ends = features(np.array([[False] * n, [True] * n]))
    default = np.zeros(ends.shape[1])
    default[: len(surrogates)] = 1.0 if exact_proxy else 1.0 / len(surrogates)

    def residuals(design):
        """The sampled residuals U - weights·features by size, after calibrating the weights."""
        masks, values = design.samples()
        sizes = list(masks)
        every = features(np.concatenate([masks[size] for size in sizes]))
        bounds = np.cumsum([0] + [masks[size].shape[0] for size in sizes])
        at = {size: every[bounds[i] : bounds[i + 1]] for i, size in enumerate(sizes)}
        weights = _calibrate(values, at, context, ends, default)
        residual = {size: values[size] - at[size] @ weights for size in masks}
        return masks, residual, weights, context.u_empty - ends[0] @ weights, context.u_grand - ends[1] @ weights

    def split(design):
        masks, residual, weights, empty, grand = residuals(design)
        estimate, stderr = greg_shapley(n, masks, residual, empty, grand, working_model=additive(design))
        estimate = estimate + weights @ feature_values
        stderr = np.sqrt(stderr**2 + (np.abs(weights) @ feature_stderr) ** 2)
        return weights, estimate, stderr

    def spread_of(design):
        masks, residual, _weights, empty, grand = residuals(design)
        return residual_spread(n, masks, residual, empty, grand, working_model=additive(design))

    design = run_design(context, estimate_of=lambda d: split(d)[2], spread_of=spread_of)
    weights, values, stderr = split(design)
    info = {
        "pairs": design.pairs_taken,
        "surrogate_weights": weights.tolist(),
        "surrogate": origin,
        # The numerical error of valuing the surrogate (0 when enumerated), next to the
        # sampled residual's: the first must stay far below the second.
        "surrogate_value_error": float((np.abs(weights) @ feature_stderr).max()),
    }
    return RawEstimate(values=values, stderr=stderr, info=info)


def _surrogates_of(game):
    """The game's surrogates (as functions of mixtures), the exact Shapley values of the
    control-variate features built from them and the numerical error of those values,
    kept on the game: they depend on the game alone, so re-valuations (other seeds,
    budgets) reuse them.

    Features: each surrogate Ĝ_j, and (n ≤ 20, where every coalition of the cheap
    surrogate is enumerated) Ĝ_j · |S|/n as well, letting the fit bend the surrogate
    differently for small and large coalitions. For n > 20 each Ĝ_j is valued by
    quadrature (:mod:`.mixture_shapley`), deterministic and to ~1e-12.
    """
    cached = getattr(game, "_taylor_features", None)
    if cached is not None:
        return cached
    surrogates = QuadraticSurrogate.for_game(game)
    n = game.n_players
    if n <= _EXACT_SURROGATE_PLAYERS:
        tables = [s.table(game) for s in surrogates]
        sizes = popcounts(n) / n
        games = tables + [table * sizes for table in tables]
        values = np.array([shapley_from_table(table, n) for table in games])
        result = ([_at_coalitions(s, game) for s in surrogates], values, np.zeros_like(values))
    else:
        forms = [s.in_mixture_form(_fedavg_examples(game)) for s in surrogates]
        valued = [mixture_quadratic_shapley(form) for form in forms]
        result = ([form.of_coalitions for form in forms], np.array([v[0] for v in valued]), np.array([v[1] for v in valued]))
    result = (result[0], result[1], result[2], surrogates[0].origin)
    try:
        game._taylor_features = result
    except AttributeError:  # a game with __slots__: recompute next time
        pass
    return result


def _at_coalitions(surrogate: QuadraticSurrogate, game):
    return lambda coalitions: surrogate.of_mixtures(game.mixture_weights(coalitions))


def _fedavg_examples(game) -> np.ndarray:
    """The players' relative example counts, read off the grand coalition's mixture, after
    checking that the game mixes by FedAvg (``p_i(S) = n_i / n_S`` on S), which is what
    the quadrature assumes."""
    n = game.n_players
    examples = np.asarray(game.mixture_weights(np.ones((1, n), dtype=bool))[0], dtype=np.float64)
    probe = np.random.default_rng(0).random((4, n)) < 0.5
    probe[:, 0] = True
    expected = probe * examples
    expected /= expected.sum(axis=1, keepdims=True)
    if np.any(examples <= 0) or not np.allclose(game.mixture_weights(probe), expected, rtol=1e-9, atol=1e-12):
        raise ValueError("method 'taylor' needs FedAvg mixing weights (p_i = n_i / n_S on S); use 'stratified'")
    return examples


def _calibrate(values, at, context, ends, default) -> np.ndarray:
    """Least-squares weights of the features (plus an intercept) on every evaluated
    coalition; the plain surrogate mix when there are too few coalitions to fit."""
    utility = np.concatenate([*values.values(), [context.u_empty, context.u_grand]])
    features = np.concatenate([*at.values(), ends])
    design = np.column_stack([np.ones(utility.size), features])
    if utility.size <= 2 * design.shape[1]:
        return default
    return np.linalg.lstsq(design, utility, rcond=None)[0][1:]
