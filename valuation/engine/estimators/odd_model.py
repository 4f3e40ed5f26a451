"""The working model of the black-box estimator: additive plus cubic odd characters.

In ±1 coordinates (``z_j = +1`` if j ∈ S else -1) every game is a sum of characters
``χ_T(z) = Π_{j∈T} z_j``. A character with |T| odd gives ``2/|T|`` to each member of T;
one with |T| even gives nothing (its total change is zero and it is symmetric). So only
the *odd* part of a game carries its Shapley value, and a complement pair sees exactly
that part: ``U(S) - U(N∖S) = 2 × (odd part at S)``. Pairwise (degree-2) terms are even:
under complement pairs a pairwise working model adds nothing (shapiq's kADD-SHAP with
pairing returns KernelSHAP's values, measured), and the next terms after the additive
ones are the cubic characters.

:func:`fit_odd_model` fits ``f = Σ a_j z_j + Σ_{|T|=3} b_T χ_T`` to ``(U(S) - U(N∖S))/2`` on
the pairs by weighted least squares: each pair weighs its stratum's share of the
estimator's variance, ``(1 - m_k/C_k) / (m_k k (n-k))`` (enumerated strata, exact anyway,
weigh nothing), a constant per pair size is free (it cancels in the mean differences).
The cubic block is ridge-penalised with the penalty of least leave-one-out error (an
infinite one allowed: the additive model alone); with ``sparse``, a forward selection
of cubic terms whose length is chosen by 4-fold cross-validation (selection redone in
each fold, so its error is honest) replaces the ridge when its error is under a tenth
of the ridge's (a game built from a few interactions: then it recovers them exactly).
Cubic terms are used while affordable (``C(n,3) ≤ 1000``, i.e. n ≤ 19, and pairs ×
terms² ≤ 3e8); otherwise the model is additive, as KernelSHAP's.

The model's Shapley value, and its exact per-stratum mean differences ``Δ_s(f)``
(hypergeometric sign means), cost O(n) per stratum. For each fitted pair it also keeps
the excess of its leave-one-out residual over its in-sample one (closed form, from the
leverages), so the estimate can correct with out-of-sample residuals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

__all__ = ["OddFourierModel", "cubic_terms_affordable", "fit_odd_model", "pair_weight"]

# Cubic characters are used while the fit stays cheap: at most this many (n ≤ 19), and
# at most this many multiply-adds for the Gram matrix (rows × terms²).
MAX_CUBIC_TERMS = 1_000
MAX_FIT_WORK = 3e8
# Ridge penalties tried for the cubic block, relative to its largest eigenvalue
# (besides an infinite one: the additive model alone).
_RELATIVE_PENALTIES = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 10.0)
# Weight of an enumerated stratum's pairs in the fit, relative to the least sampled one.
ENUMERATED_WEIGHT = 0.1
# ... given only while the sampled pairs number under this many per additive parameter.
SCARCE_ROWS = 3
# The sparse fit replaces the ridge when its cross-validated error is below this share
# of the ridge's; it selects at most this many cubic terms.
SPARSE_GAIN = 0.1
MAX_SELECTED_TERMS = 24


def cubic_terms_affordable(n: int, pairs: int) -> bool:
    terms = comb(n, 3)
    return n >= 4 and terms <= MAX_CUBIC_TERMS and pairs * terms**2 <= MAX_FIT_WORK


@lru_cache(maxsize=64)
def _triples(n: int) -> np.ndarray:
    triples = np.array(list(combinations(range(n), 3)), dtype=np.intp).reshape(-1, 3)
    triples.flags.writeable = False
    return triples


def _cubic_features(signs: np.ndarray) -> np.ndarray:
    triples = _triples(signs.shape[1])
    return signs[:, triples[:, 0]] * signs[:, triples[:, 1]] * signs[:, triples[:, 2]]


@dataclass
class OddFourierModel:
    """``f(z) = Σ a_j z_j + Σ b_T χ_T(z)`` and, per pair size, what turns each fitted
    pair's in-sample residual into its leave-one-out residual (half-difference units)."""

    linear: np.ndarray
    cubic: np.ndarray
    penalty: float | None = None
    loo_excess: dict[int, np.ndarray] = field(default_factory=dict)

    def predict(self, masks: np.ndarray) -> np.ndarray:
        signs = 2.0 * np.asarray(masks, dtype=np.float64) - 1.0
        prediction = signs @ self.linear
        if self.cubic.size:
            prediction += _cubic_features(signs) @ self.cubic
        return prediction

    def shapley(self) -> np.ndarray:
        n = self.linear.size
        member_sums = (
            np.bincount(_triples(n).ravel(), weights=np.repeat(self.cubic, 3), minlength=n) if self.cubic.size else 0.0
        )
        return 2.0 * self.linear + (2.0 / 3.0) * member_sums

    @property
    def total(self) -> float:
        """``f(N) - f(∅)``."""
        return 2.0 * float(self.linear.sum() + self.cubic.sum())

    def stratum_effect(self, s: int) -> np.ndarray:
        """Exact ``Δ_{i,s}(f)``: mean of f over size-s coalitions with i minus without i.
        A character χ_T contributes ``A_t(s)`` to members of T and ``B_t(s)`` to the
        others (|T| = t), sign means over hypergeometric draws."""
        n = self.linear.size
        effect = _member_effect(n, s, 1) * self.linear + _other_effect(n, s, 1) * (self.linear.sum() - self.linear)
        if self.cubic.size:
            member_sums = np.bincount(_triples(n).ravel(), weights=np.repeat(self.cubic, 3), minlength=n)
            effect += _member_effect(n, s, 3) * member_sums + _other_effect(n, s, 3) * (self.cubic.sum() - member_sums)
        return effect


def _sign_mean(population: int, successes: int, draws: int) -> float:
    """``E[(-1)^(draws - h)]`` for h hypergeometric: the mean of a product of ``draws``
    ±1 signs of distinct players, ``successes`` of the ``population`` being +1."""
    if successes < 0 or successes > population:
        return 0.0
    total = sum(
        comb(successes, h) * comb(population - successes, draws - h) * (-1) ** (draws - h) for h in range(draws + 1)
    )
    return total / comb(population, draws)


@lru_cache(maxsize=4096)
def _member_effect(n: int, s: int, t: int) -> float:
    # i ∈ T: the other t-1 members among n-1 players, s-1 (i in) or s (i out) of them in.
    return _sign_mean(n - 1, s - 1, t - 1) + _sign_mean(n - 1, s, t - 1)


@lru_cache(maxsize=4096)
def _other_effect(n: int, s: int, t: int) -> float:
    return _sign_mean(n - 1, s - 1, t) - _sign_mean(n - 1, s, t)


def pair_weight(n: int, k: int, pairs: int, draws: int | None = None) -> float:
    """A pair's share of the estimator's variance, ``(1 - m/C) / (m k (n-k))`` with m
    the draws its strata will hold (the middle stratum n/2 counts once, not twice)."""
    draws = pairs if draws is None else draws
    capacity = comb(n, k) // 2 if 2 * k == n else comb(n, k)
    share = 0.25 if 2 * k == n else 1.0
    return share * max(1.0 - draws / capacity, 0.0) / (max(draws, 1) * k * (n - k))


def fit_odd_model(
    n: int, pairs: dict, *, cubic: bool, sparse: bool = False, draws: dict[int, int] | None = None
) -> OddFourierModel:
    """Fit the working model to ``pairs`` (``{k: (reps, u_rep, u_complement)}``); with
    ``sparse``, a cross-validated forward selection of cubic terms competes with the ridge."""
    sizes = [k for k in sorted(pairs) if pairs[k][0].shape[0] > 0]
    weights = {k: pair_weight(n, k, pairs[k][0].shape[0], (draws or {}).get(k)) for k in sizes}
    if not sizes or all(weights[k] == 0.0 for k in sizes):  # enumerated: nothing to reduce
        return OddFourierModel(np.zeros(n), np.zeros(0))
    # Enumerated strata are exact whatever the model, but their pairs still tell it about
    # the game: a small weight lets them steady the fit when the sampled pairs are few
    # (without it, at 5 % of 2^10 the additive fit nearly interpolates and blows up).
    enumerated = {k for k, w in weights.items() if w == 0.0}
    sampled_pairs = sum(pairs[k][0].shape[0] for k in sizes if k not in enumerated)
    scarce = sampled_pairs < SCARCE_ROWS * (n + len(sizes))
    floor = ENUMERATED_WEIGHT * min(w for w in weights.values() if w > 0) if scarce else 0.0
    weights = {k: max(w, floor) for k, w in weights.items()}
    counts = [pairs[k][0].shape[0] for k in sizes]
    signs = np.concatenate([2.0 * pairs[k][0] - 1.0 for k in sizes])
    half_difference = np.concatenate([(pairs[k][1] - pairs[k][2]) / 2.0 for k in sizes])
    root_weight = np.sqrt(np.concatenate([np.full(c, weights[k]) for k, c in zip(sizes, counts)]))
    # A free constant per pair size, where there are pairs enough to spare one.
    blocks = _Centring(counts, [2 * k != n and weights[k] > 0 and c >= 3 for k, c in zip(sizes, counts)])
    additive = blocks.centre(signs) * root_weight[:, None]
    y = blocks.centre(half_difference[:, None])[:, 0] * root_weight
    axes = _AdditiveFit(additive)
    leverage = axes.leverage + blocks.mean_leverage()
    residual = y - axes.project(y)
    cubic_coef, penalty = np.zeros(0), None
    if cubic:
        cubic_features = blocks.centre(_cubic_features(signs)) * root_weight[:, None]
        ridge = _ridge_cubic(cubic_features, axes, residual, leverage)
        if sparse:
            greedy = _greedy_cubic(cubic_features, additive, y, axes, residual, leverage)
            if np.isfinite(ridge[-1]) and greedy[-1] < SPARSE_GAIN * ridge[-1]:
                ridge = greedy
        cubic_coef, penalty, residual, leverage, _ = ridge
        y = y - cubic_features @ cubic_coef
    linear = axes.solve(y)
    # Leave-one-out residual = residual / (1 - leverage).
    # Enumerated strata keep the one model (no leave-one-out): their mean differences
    # are taken over the whole stratum, exact only for a residual of a single f.
    in_sample = np.divide(residual, root_weight, out=np.zeros_like(residual), where=root_weight > 0)
    excess = in_sample * leverage / np.maximum(1.0 - leverage, 1e-12)
    bounds = np.cumsum([0, *counts])
    loo = {k: excess[bounds[i] : bounds[i + 1]] * (k not in enumerated) for i, k in enumerate(sizes)}
    return OddFourierModel(linear, cubic_coef, penalty, loo)


class _AdditiveFit:
    """Least squares on the additive columns through their n × n Gram matrix (rows × n²
    work; a whisker of ridge makes the sum direction, which centring leaves free and
    which no estimate depends on, solvable): solutions, projections, leverages."""

    def __init__(self, additive: np.ndarray) -> None:
        gram = additive.T @ additive
        gram[np.diag_indices_from(gram)] += 1e-10 * max(float(np.trace(gram)) / gram.shape[0], 1e-300)
        self.additive = additive
        self.inverse_rows = np.linalg.solve(gram, additive.T)  # (n, rows): G⁻¹ Aᵀ
        self.leverage = np.einsum("ij,ji->i", additive, self.inverse_rows)

    def solve(self, target: np.ndarray) -> np.ndarray:
        return self.inverse_rows @ target

    def project(self, target: np.ndarray) -> np.ndarray:
        return self.additive @ (self.inverse_rows @ target)


def _ridge_cubic(features, axes, residual, leverage):
    """Ridge on the cubic block (after the additive one), penalty by least leave-one-out
    error; returns coefficients, penalty, residual and leverage of the chosen fit."""
    features = features - axes.project(features)
    eigenvalues, eigenvectors, rotated = _principal_axes(features)
    projected = rotated.T @ residual
    squared = rotated**2
    best = (_loo_error(residual, leverage), None)
    scale = max(float(eigenvalues.max(initial=0.0)), 1e-300)
    for relative in _RELATIVE_PENALTIES:
        shrink = 1.0 / (eigenvalues + relative * scale)
        error = _loo_error(residual - rotated @ (shrink * projected), leverage + squared @ shrink)
        if error < best[0]:
            best = (error, relative * scale)
    penalty = best[1]
    if penalty is None:
        return np.zeros(features.shape[1]), None, residual, leverage, best[0]
    shrink = 1.0 / (eigenvalues + penalty)
    coefficients = eigenvectors @ (shrink * projected)
    return coefficients, penalty, residual - rotated @ (shrink * projected), leverage + squared @ shrink, best[0]


def _greedy_path(features, target, steps, held_out=None):
    """Orthogonal matching pursuit on (features, target): the columns in the order they
    enter and, for ``held_out = (features, target)`` of other rows, the squared error of
    the path's prediction there after each step (index 0: before any)."""
    candidates, residual = features.copy(), target.copy()
    errors = []
    if held_out is not None:
        other, other_residual = held_out[0].copy(), held_out[1].copy()
        errors.append(float(other_residual @ other_residual))
    order: list[int] = []
    for _ in range(steps):
        norms = np.sqrt(np.einsum("ij,ij->j", candidates, candidates))
        usable = norms > 1e-9 * max(float(norms.max(initial=0.0)), 1e-300)
        score = np.where(usable, np.abs(residual @ candidates) / np.where(usable, norms, 1.0), -1.0)
        score[order] = -1.0
        j = int(np.argmax(score))
        if score[j] <= 0:
            break
        order.append(j)
        direction = candidates[:, j] / norms[j]
        step, loadings = direction @ residual, direction @ candidates
        residual -= step * direction
        candidates -= np.outer(direction, loadings)
        if held_out is not None:
            # The same column operations on the other rows: their prediction follows.
            other_direction = other[:, j] / norms[j]
            other_residual -= step * other_direction
            other -= np.outer(other_direction, loadings)
            errors.append(float(other_residual @ other_residual))
    return order, errors


def _greedy_cubic(features, additive, target, axes, residual, leverage, folds=4):
    """Forward selection of cubic terms, its length chosen by K-fold cross-validation
    (additive fit and selection redone inside each fold, so the error is honest);
    returns the fit on all pairs."""
    rows, columns = features.shape
    steps = min(columns, rows // 3, MAX_SELECTED_TERMS)
    fold = np.arange(rows) % folds
    error = np.zeros(steps + 1)
    both = np.column_stack([features, target])
    for f in range(folds):
        train, test = fold != f, fold == f
        # Additive part fitted on the training rows, then removed from both sides.
        mapping = np.linalg.lstsq(additive[train], both[train], rcond=None)[0]
        train_rest = both[train] - additive[train] @ mapping
        test_rest = both[test] - additive[test] @ mapping
        _, path = _greedy_path(train_rest[:, :-1], train_rest[:, -1], steps, (test_rest[:, :-1], test_rest[:, -1]))
        error += np.array(path + [np.inf] * (steps + 1 - len(path)))
    count = int(np.argmin(error))
    coefficients = np.zeros(columns)
    if count == 0:
        return coefficients, None, residual, leverage, float(error[0])
    features = features - axes.project(features)
    chosen, _ = _greedy_path(features, residual, count)
    q, _ = np.linalg.qr(features[:, chosen])
    coefficients[chosen] = np.linalg.lstsq(features[:, chosen], residual, rcond=None)[0]
    return (
        coefficients,
        -float(count),
        residual - q @ (q.T @ residual),
        leverage + (q**2).sum(axis=1),
        float(error[count]),
    )


def _principal_axes(features: np.ndarray):
    """Eigenvalues λ and eigenvectors V of ``FᵀF`` and the rotated features ``F V``,
    through whichever of ``FᵀF`` and ``FFᵀ`` is smaller (few pairs, many terms: the
    latter, with V = Fᵀ U / sqrt(λ) on the non-zero part)."""
    rows, columns = features.shape
    if columns <= rows:
        eigenvalues, eigenvectors = np.linalg.eigh(features.T @ features)
        eigenvalues = np.maximum(eigenvalues, 0.0)
        return eigenvalues, eigenvectors, features @ eigenvectors
    eigenvalues, left = np.linalg.eigh(features @ features.T)
    keep = eigenvalues > 1e-12 * max(float(eigenvalues.max(initial=0.0)), 1e-300)
    eigenvalues, left = eigenvalues[keep], left[:, keep]
    root = np.sqrt(eigenvalues)
    return eigenvalues, (features.T @ left) / root, left * root


def _loo_error(residual: np.ndarray, leverage: np.ndarray) -> float:
    free = 1.0 - leverage
    if np.any(free < 1e-9):
        return np.inf  # the model interpolates some pair: no honest error estimate
    return float(np.sum((residual / free) ** 2))


class _Centring:
    """Subtract each flagged block's column means (a free constant per pair size)."""

    def __init__(self, counts, flags):
        self.bounds = np.cumsum([0, *counts])
        self.flagged = [i for i, flag in enumerate(flags) if flag]

    def mean_leverage(self) -> np.ndarray:
        leverage = np.zeros(self.bounds[-1])
        for i in self.flagged:
            leverage[self.bounds[i] : self.bounds[i + 1]] = 1.0 / (self.bounds[i + 1] - self.bounds[i])
        return leverage

    def centre(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.array(matrix, dtype=np.float64, copy=True)
        for i in self.flagged:
            block = matrix[self.bounds[i] : self.bounds[i + 1]]
            block -= block.mean(axis=0)
        return matrix
