"""Exact-to-quadrature Shapley values of a quadratic function of the FedAvg mixture.

The Taylor control variate needs the Shapley values of its surrogate

    Ĝ(S) = A + ℓ·p(S) + ½ p(S)ᵀ H p(S),    p_j(S) = n_j x_j / N(S),  N(S) = Σ_j n_j x_j,

for any number of players, to a precision far below the sampled residual's error (a
Monte Carlo estimate of them was the engine's error floor above 20 players). Two
identities make this a smooth two-dimensional integral of O(n·r) work per node, where
r is the rank of H:

* Owen's multilinear extension: ``φ_i = ∫_0^1 E_t[v(S ∪ i) - v(S ∖ i)] dt``, the
  expectation over coalitions that hold every other player independently with
  probability t;
* the Laplace transform of the normalisation: ``1/N = ∫_0^∞ e^{-uN} du`` and
  ``1/N² = ∫_0^∞ u e^{-uN} du``. Under independent membership ``E[x_j x_k e^{-uN}]``
  factorises into ``Π_l M_l(u) · ρ_j(u) ρ_k(u)`` with ``M_l = 1 - t + t e^{-u n_l}`` and
  ``ρ_l = t e^{-u n_l} / M_l`` (j ≠ k; ``ρ_j`` alone when j = k).

So ``E_t[v | x_i = b]`` is an integral over u of sums that the low-rank factorisation
``H = V diag(λ) Vᵀ`` makes O(n·r) for all i at once (see :func:`_marginal_integrand`).
The t-integral uses Gauss–Legendre panels that shrink geometrically towards 0 and 1
(where the integrand changes on the scale 1/n), the u-integral Gauss–Legendre panels in
log u. Each value is computed at two resolutions; their difference is reported as the
numerical error, typically 1e-12 of the values, and enters the estimator's stderr.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["MixtureQuadratic", "mixture_quadratic_shapley"]

# Eigenvalues of H below this share of the largest are dropped: with m validation rows
# and d features, H of a linear family has rank ≤ d + 1 whatever n is.
_RANK_TOLERANCE = 1e-13
FINE, COARSE = 8, 6


@dataclass(frozen=True)
class MixtureQuadratic:
    """``Ĝ(S) = constant + linear·p(S) + ½ p(S)ᵀ (V diag(λ) Vᵀ) p(S)``."""

    examples: np.ndarray  # n_j > 0, (n,)
    constant: float
    linear: np.ndarray  # (n,)
    eigenvalues: np.ndarray  # (r,)
    eigenvectors: np.ndarray  # (n, r)

    @classmethod
    def from_expansion(cls, examples, anchor, constant, gradient, hessian) -> "MixtureQuadratic":
        """From ``c + g·(p - a) + ½ (p - a)ᵀ H (p - a)`` (any symmetric H)."""
        hessian = 0.5 * (np.asarray(hessian, dtype=np.float64) + np.asarray(hessian, dtype=np.float64).T)
        anchor = np.asarray(anchor, dtype=np.float64)
        pulled = hessian @ anchor
        # Rewritten around p = 0; Ĝ(∅) (p = 0) stays c - g·a + ½ aᵀHa, as before.
        linear = np.asarray(gradient, dtype=np.float64) - pulled
        constant = float(constant) - float(np.asarray(gradient) @ anchor) + 0.5 * float(anchor @ pulled)
        eigenvalues, eigenvectors = np.linalg.eigh(hessian)
        keep = np.abs(eigenvalues) > _RANK_TOLERANCE * max(float(np.abs(eigenvalues).max(initial=0.0)), 1e-300)
        return cls(np.asarray(examples, dtype=np.float64), constant, linear, eigenvalues[keep], eigenvectors[:, keep])

    def of_mixtures(self, mixtures: np.ndarray) -> np.ndarray:
        projected = mixtures @ self.eigenvectors
        return self.constant + mixtures @ self.linear + 0.5 * (projected**2) @ self.eigenvalues

    def of_coalitions(self, coalitions: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
        """The quadratic at bool coalitions (k, n) without forming their mixtures:
        ``p = (x ∘ n) / N``, so ``ℓ·p`` and ``Vᵀp`` are one product with ``x`` each,
        divided by N; O(k n r) time and O(chunk n) memory for any k."""
        weighted = np.column_stack([self.examples, self.linear * self.examples, self.eigenvectors * self.examples[:, None]])
        values = np.empty(coalitions.shape[0])
        for start in range(0, coalitions.shape[0], chunk):
            sums = np.asarray(coalitions[start : start + chunk], dtype=np.float64) @ weighted
            totals = sums[:, 0]
            inverse = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
            projected = sums[:, 2:] * inverse[:, None]
            values[start : start + chunk] = self.constant + sums[:, 1] * inverse + 0.5 * (projected**2) @ self.eigenvalues
        return values


def mixture_quadratic_shapley(quadratic: MixtureQuadratic) -> tuple[np.ndarray, np.ndarray]:
    """Shapley values of ``quadratic`` as a game, and an estimate of their numerical error."""
    fine = _integrate(quadratic, t_nodes=FINE, s_nodes=FINE)
    coarse = _integrate(quadratic, t_nodes=COARSE, s_nodes=COARSE)
    return fine, np.abs(fine - coarse)


def _integrate(q: MixtureQuadratic, *, t_nodes: int, s_nodes: int) -> np.ndarray:
    n = q.examples.size
    t_points, t_weights = _t_rule(n, t_nodes)
    u_points, u_weights = _u_rule(q.examples, s_nodes)
    values = np.zeros(n)
    for t, weight in zip(t_points, t_weights):
        values += weight * _marginal_integrand(q, t, u_points, u_weights)
    return values


def _marginal_integrand(q: MixtureQuadratic, t: float, u: np.ndarray, u_weights: np.ndarray) -> np.ndarray:
    """``E_t[Ĝ | x_i = 1] - E_t[Ĝ | x_i = 0]`` for every player i (module docstring)."""
    examples = q.examples
    decay = np.exp(-np.outer(u, examples))  # e^{-u n_l}, (U, n)
    moment = (1.0 - t) + t * decay  # M_l
    rho = t * decay / moment
    log_moment = np.log(moment)
    # Π_{l≠i} M_l, computed in logs: it underflows for large n otherwise.
    others = np.exp(log_moment.sum(axis=1, keepdims=True) - log_moment)
    stay = -np.expm1(-np.outer(u, examples))  # 1 - e^{-u n_i}

    # Linear part: c_j = ℓ_j n_j; Σ_j c_j ρ_j with ρ_i set to b ∈ {0, 1}.
    c = q.linear * examples
    without_i = (rho @ c)[:, None] - c * rho  # (U, n)
    linear = others * (decay * c - stay * without_i)

    # Quadratic part: K = diag(n) H diag(n) = W diag(λ) Wᵀ with W = diag(n) V.
    w = q.eigenvectors * examples[:, None]
    projected = rho @ w  # (U, r)
    kappa = (projected * q.eigenvalues) @ w.T  # K ρ, (U, n)
    k_diag = (w**2) @ q.eigenvalues  # K_ii
    quadratic_form = (projected**2) @ q.eigenvalues  # ρᵀ K ρ
    q_rho = quadratic_form[:, None] - (rho**2) @ k_diag[:, None] + rho @ k_diag[:, None]
    base = q_rho - 2 * rho * kappa + 2 * k_diag * rho**2 - k_diag * rho
    slope = 2 * kappa - 2 * k_diag * rho + k_diag
    quadratic = u[:, None] * others * (decay * slope - stay * base)

    return u_weights @ (linear + 0.5 * quadratic)


@lru_cache(maxsize=64)
def _t_rule(n: int, per_panel: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre on [0, 1] over panels that halve towards both ends down to ~1/(16n)."""
    depth = int(np.ceil(np.log2(16 * max(n, 2))))
    inner = [2.0**-k for k in range(depth, 1, -1)]  # 1/(16n) ... 1/4
    breaks = np.array([0.0, *inner, 0.5, *[1.0 - b for b in reversed(inner)], 1.0])
    return _composite(breaks, per_panel)


def _u_rule(examples: np.ndarray, per_panel: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre in u on [0, u0] with u0 = 0.01 / N(N), where the integrand is an
    almost linear function of u, then in s = log u over unit panels up to u = 45 / min n_j
    (where e^{-u n_j} < 3e-20): the integrand changes on the scale of 1/N(S)."""
    flat_end = 0.01 / float(examples.sum())
    high = np.log(45.0 / float(examples.min()))
    panels = max(1, int(np.ceil(high - np.log(flat_end))))
    s_points, s_weights = _composite(np.linspace(np.log(flat_end), high, panels + 1), per_panel)
    u = np.exp(s_points)
    flat_points, flat_weights = _composite(np.array([0.0, flat_end]), per_panel)
    return np.concatenate([flat_points, u]), np.concatenate([flat_weights, s_weights * u])  # du = u ds


def _composite(breaks: np.ndarray, per_panel: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(per_panel)
    lower, upper = breaks[:-1, None], breaks[1:, None]
    half = 0.5 * (upper - lower)
    points = (lower + half * (nodes + 1.0)).ravel()
    return points, (half * weights).ravel()
