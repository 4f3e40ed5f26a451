"""Regression-adjusted stratified estimate on pairs and single coalitions.

The Shapley value of player i is ``(U(N) - U(∅))/n + (1/n) Σ_{s=1}^{n-1} Δ_{i,s}``, where
``Δ_{i,s}`` is the difference between the mean utility of size-s coalitions with and
without i. The estimate is a generalised-regression (GREG) estimator (Witter et al. 2025,
regression-adjusted Monte Carlo) with the working model f of :mod:`.odd_model`:

    (1/n) Σ_s [c_s Δ_s(f)  (exact)  +  Δ̂_s(U - c_s f)  (sampled)]  +  (U(N) - U(∅))/n

Any f and any scale c_s keep it valid; a good fit only shrinks the residual. c_s is the
least-squares slope of the pairs' differences on the model's, per pair size (so c_k =
c_{n-k}), within [0, 2]: about 1 where the model is right, about 0 where the game is flat
(a voting game's small coalitions all lose), so that such a stratum keeps its zero
spread instead of inheriting the model's. Enumerated strata contribute exactly, so a
budget of 2^n gives the exact values.

Residuals are leave-one-out for the pairs the model was fitted on, so the correction
and its variance see the model's out-of-sample error; single coalitions (not fitted on)
are out of sample already.

Standard errors: per stratum and player, finite-population-corrected sample variances of
the residual among coalitions with and without i, plus the covariance of the two
members of each complement pair (in strata k and n-k, or both in n/2), estimated from
the pairs and kept within ±1 correlation. A group whose residuals all came out equal is
given the variance of a value off by the residual range in a share 1/(m+2) of it
(Laplace's rule of succession): a stratum that only looks flat in a few draws keeps an
honest error.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np

from .odd_model import OddFourierModel

__all__ = [
    "Stratum",
    "flat_group_variance",
    "model_estimate",
    "regression_adjusted_estimate",
    "residual_range",
    "residual_strata",
]


@dataclass
class Stratum:
    """One size's sample: coalitions, residuals ``U - U(∅) - scale f``, the scale, and
    how many of its leading rows are linked to complement-pair partners (row j ↔ the
    partner stratum's row j, or for s = n/2 row j ↔ row links + j)."""

    masks: np.ndarray
    residual: np.ndarray
    links: int
    scale: float = 1.0


def residual_strata(n: int, model: OddFourierModel, pairs: dict, singles: dict, u_empty: float) -> dict[int, Stratum]:
    """Per size s, the residuals of every sampled coalition: pairs first (their model
    predictions leave-one-out, the correction split evenly and oppositely between the
    two members, as the model is odd), then singles.

    The model is scaled per pair size k (strata k and n-k alike) by the least-squares
    slope of the pairs' differences on its predictions: where the game is flat (a
    voting game's small coalitions all lose) the slope is near 0 and the stratum keeps
    its zero spread instead of inheriting the model's; where the model is right, 1.
    """
    parts: dict[int, list] = {}
    scales: dict[int, float] = {}
    for k, (reps, own, complement) in sorted(pairs.items()):
        if reps.shape[0] == 0:
            continue
        prediction = model.predict(reps) - model.loo_excess.get(k, 0.0)
        scales[k] = scales[n - k] = _slope(own - complement, 2.0 * prediction)
        parts.setdefault(k, []).append((reps, own - u_empty, prediction))
        parts.setdefault(n - k, []).append((~reps, complement - u_empty, -prediction))
    linked = {s: sum(m.shape[0] for m, _, _ in blocks) for s, blocks in parts.items()}
    for s, (masks, values) in sorted(singles.items()):
        parts.setdefault(s, []).append((masks, values - u_empty, model.predict(masks)))
    strata = {}
    for s, blocks in parts.items():
        links = linked.get(s, 0) if 2 * s != n else linked.get(s, 0) // 2
        scale = scales.get(s, 1.0)
        masks = np.concatenate([m for m, _, _ in blocks])
        residual = np.concatenate([u - scale * f for _, u, f in blocks])
        strata[s] = Stratum(masks, residual, links, scale)
    return strata


def _slope(target: np.ndarray, prediction: np.ndarray) -> float:
    """Least-squares slope of target on prediction (both centred), within [0, 2]; 1 with
    fewer than three points or a constant prediction."""
    if target.size < 3:
        return 1.0
    centred = prediction - prediction.mean()
    spread = float(centred @ centred)
    if spread <= 1e-300:
        return 1.0
    return float(np.clip((target - target.mean()) @ centred / spread, 0.0, 2.0))


def regression_adjusted_estimate(
    n: int, model: OddFourierModel, strata: dict[int, Stratum], total: float
) -> tuple[np.ndarray, np.ndarray]:
    """``total/n + (1/n) Σ_s [c_s Δ_s(f) + Δ̂_s(U - c_s f)]`` (c_s the stratum's scale,
    ``Δ_s(f)`` exact) and its standard errors."""
    correction = np.zeros(n)
    variance = np.zeros(n)
    pooled = np.concatenate([st.residual for st in strata.values()]) if strata else np.zeros(0)
    pooled_variance = float(pooled.var(ddof=1)) if pooled.size > 1 else 0.0
    spread = residual_range(strata)
    groups = {s: _group_statistics(n, s, stratum, spread) for s, stratum in strata.items()}
    for s in range(1, n):
        if s not in groups:
            correction += model.stratum_effect(s)
            variance += 2.0 * pooled_variance  # a stratum never drawn: one draw's worth of error
            continue
        g = groups[s]
        known = (g.count_in > 0) & (g.count_out > 0)
        correction += strata[s].scale * model.stratum_effect(s) + np.where(known, g.mean_in - g.mean_out, 0.0)
        variance += np.where(known, g.var_of_mean_in + g.var_of_mean_out, 2.0 * g.fallback)
    for k in range(1, n // 2 + 1):
        if k in strata and (n - k) in strata and strata[k].links > 0:
            variance += _pair_covariance(n, k, strata, groups)
    estimate = total / n + correction / n
    return estimate, np.sqrt(np.maximum(variance, 0.0)) / n


def model_estimate(n: int, model: OddFourierModel, strata: dict[int, Stratum], total: float) -> np.ndarray:
    """The working model's part alone, ``total/n + (1/n) Σ_s c_s Δ_s(f)``: the regression
    estimate, without the sampled correction."""
    effect = sum((strata[s].scale if s in strata else 1.0) * model.stratum_effect(s) for s in range(1, n))
    return total / n + np.asarray(effect, dtype=np.float64) / n


@dataclass
class _Groups:
    count_in: np.ndarray
    count_out: np.ndarray
    mean_in: np.ndarray
    mean_out: np.ndarray
    sd_in: np.ndarray
    sd_out: np.ndarray
    var_of_mean_in: np.ndarray
    var_of_mean_out: np.ndarray
    fallback: float


def residual_range(strata: dict[int, Stratum]) -> float:
    """Range of all sampled residuals: the scale of the spread a flat-looking group may hide."""
    if not strata:
        return 0.0
    every = np.concatenate([st.residual for st in strata.values()])
    return float(every.max() - every.min()) if every.size else 0.0


def flat_group_variance(count, spread: float):
    """Variance to assume for a group whose residuals all came out equal: a value off by
    the residual range in a share ``1/(m+2)`` of it (Laplace's rule of succession), so
    that a stratum that merely looks flat in a few draws (a voting game's rare winning
    small coalitions) keeps an honest error and a share of the budget."""
    share = 1.0 / (np.asarray(count, dtype=np.float64) + 2.0)
    return spread**2 * share * (1.0 - share)


def _group_statistics(n: int, s: int, stratum: Stratum, spread: float) -> _Groups:
    """Per player, the residual's mean, spread and variance of the mean among the
    stratum's coalitions with and without the player (finite-population corrected)."""
    member = stratum.masks.astype(np.float64)
    r = stratum.residual
    drawn = r.size
    fallback = float(r.var(ddof=1)) if drawn > 1 else 0.0
    if fallback <= 1e-12 * spread**2:
        fallback = float(flat_group_variance(drawn, spread))
    count_in = member.sum(axis=0)
    count_out = drawn - count_in
    sum_in, square_in = r @ member, (r**2) @ member
    sum_out, square_out = r.sum() - sum_in, (r**2).sum() - square_in
    mean_in, sd_in, var_in = _mean_spread(sum_in, square_in, count_in, comb(n - 1, s - 1), fallback, spread)
    mean_out, sd_out, var_out = _mean_spread(sum_out, square_out, count_out, comb(n - 1, s), fallback, spread)
    return _Groups(count_in, count_out, mean_in, mean_out, sd_in, sd_out, var_in, var_out, fallback)


def _mean_spread(total, squares, count, population, fallback, spread):
    safe = np.maximum(count, 1.0)
    mean = total / safe
    sample_variance = np.where(count > 1, (squares - safe * mean**2) / np.maximum(count - 1, 1.0), fallback)
    sample_variance = np.maximum(sample_variance, 0.0)
    flat = sample_variance <= 1e-12 * spread**2
    sample_variance = np.where(flat, np.maximum(sample_variance, flat_group_variance(count, spread)), sample_variance)
    finite_population = np.maximum(1.0 - count / population, 0.0)
    return mean, np.sqrt(sample_variance), finite_population * sample_variance / safe


def _pair_covariance(n: int, k: int, strata: dict[int, Stratum], groups: dict[int, _Groups]) -> np.ndarray:
    """Twice the covariance, per player, of the two strata's mean differences through
    the complement pairs they share. For a pair (R, N∖R) and player i, R and N∖R fall in
    opposite groups (with / without i), so the pair enters both mean differences with
    the same sign and adds ``-2 cov(r_R, r_{N∖R}) / (m_R m_{N∖R})``."""
    low, high = strata[k], strata[n - k]
    links = low.links
    reps = low.masks[:links]
    r_low = low.residual[:links]
    r_high = high.residual[links : 2 * links] if 2 * k == n else high.residual[:links]
    g_low, g_high = groups[k], groups[n - k]
    member = reps.astype(np.float64)
    result = np.zeros(n)
    for holds, m_low, sd_low, m_high, sd_high in (
        (member, g_low.count_in, g_low.sd_in, g_high.count_out, g_high.sd_out),
        (1.0 - member, g_low.count_out, g_low.sd_out, g_high.count_in, g_high.sd_in),
    ):
        correlation = _linked_correlation(holds, r_low, r_high)
        linked = holds.sum(axis=0)
        finite_population = np.sqrt(
            np.maximum(1.0 - m_low / comb(n - 1, k - 1 if holds is member else k), 0.0)
            * np.maximum(1.0 - m_high / comb(n - 1, n - k - 1 if holds is not member else n - k), 0.0)
        )
        result += -2.0 * correlation * sd_low * sd_high * linked / np.maximum(m_low * m_high, 1.0) * finite_population
    return result


def _linked_correlation(holds: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per player, the correlation of a and b over the linked pairs in the player's group
    (weights ``holds``), 0 where fewer than three pairs."""
    count = holds.sum(axis=0)
    safe = np.maximum(count, 1.0)
    mean_a, mean_b = (a @ holds) / safe, (b @ holds) / safe
    cov = (a * b) @ holds / safe - mean_a * mean_b
    var_a = np.maximum((a**2) @ holds / safe - mean_a**2, 0.0)
    var_b = np.maximum((b**2) @ holds / safe - mean_b**2, 0.0)
    denominator = np.sqrt(var_a * var_b)
    correlation = np.where(denominator > 0, cov / np.where(denominator > 0, denominator, 1.0), 0.0)
    return np.where(count >= 3, np.clip(correlation, -1.0, 1.0), 0.0)
