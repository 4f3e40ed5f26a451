"""Second-order expansions of an FL round's smooth utility along the participants'
updates: what the Taylor control variate values exactly and subtracts.

Two routes, both around the grand coalition's mixture ``a`` and both costing no
coalition from the budget:

* :func:`analytic_expansions` — families whose outputs are linear in the weights, one
  output per row, metrics with closed-form derivatives in the scores: the gradient and
  Hessian are matrix products in output space, O(m n²).
* :func:`gauss_newton_expansion` — everything else (the MLP, softmax, AUC, registered
  families) once n is too large for finite differences in all n² pairs of updates.
  Each participant's update moves the outputs along ``D_i = ∂o/∂p_i`` (exact for
  linear families, central differences otherwise: 2n model evaluations). The D_i span
  a subspace of rank r ≤ min(n, parameters); the smooth metric is differentiated by
  finite differences in that subspace only (2r² evaluations of the metric on outputs,
  no model), and ``H = C H_z Cᵀ`` with C the participants' coordinates. This is the
  Gauss–Newton expansion: it drops the model's own curvature, which costs some
  variance reduction for the MLP, never validity (the control variate is valued
  exactly whatever its shape).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .metrics import score_derivatives

__all__ = [
    "analytic_expansions",
    "central_difference_derivatives",
    "central_difference_offsets",
    "gauss_newton_expansion",
    "MAX_SUBSPACE_RANK",
]

Expansion = tuple[np.ndarray, float, np.ndarray, np.ndarray]  # anchor, value, gradient, Hessian

# Directions of output change kept by the Gauss–Newton route: 2 r² metric evaluations.
MAX_SUBSPACE_RANK = 48
_RELATIVE_STEP = 1e-3


def analytic_expansions(
    *, anchor: np.ndarray, output_basis: np.ndarray, y: np.ndarray, stand_ins: list[tuple[str, float]]
) -> list[Expansion] | None:
    """Expansions of each ``(metric, width)`` stand-in; None if one has no closed form.

    ``output_basis`` has rows ``X·Δ_i`` (one score per validation row) and last the
    global model's scores."""
    directions = output_basis[:-1]  # X·Δ_i: how each participant moves the scores
    scores = np.append(anchor, 1.0) @ output_basis
    expansions = []
    for metric, scale in stand_ins:
        terms = score_derivatives(metric, y, scores, scale=scale)
        if terms is None:
            return None
        value, gradient, diagonal, vectors, core = terms
        projected = directions @ vectors
        hessian = (directions * diagonal) @ directions.T + projected @ core @ projected.T
        expansions.append((anchor, value, directions @ gradient, hessian))
    return expansions


def gauss_newton_expansion(
    *,
    anchor: np.ndarray,
    outputs_of: Callable[[np.ndarray], np.ndarray],
    smooth_of_outputs: Callable[[np.ndarray], np.ndarray],
    rows_per_chunk: int,
    step: float = 1e-3,
) -> Expansion:
    """The Gauss–Newton expansion of ``smooth_of_outputs(outputs_of(p))`` at ``anchor``.

    ``outputs_of(mixtures (c, n)) -> (c, m, k)``; ``smooth_of_outputs((c, m, k)) -> (c,)``.
    """
    n = anchor.size
    center = outputs_of(anchor[None])[0]
    shape = center.shape
    directions = _output_directions(anchor, outputs_of, rows_per_chunk, step).reshape(n, -1)
    basis, coordinates = _subspace(directions)
    norms = np.linalg.norm(coordinates, axis=1)
    h = _RELATIVE_STEP * float(np.median(norms[norms > 0])) if np.any(norms > 0) else _RELATIVE_STEP
    offsets = central_difference_offsets(basis.shape[1], h)
    values = np.empty(offsets.shape[0])
    flat_center = center.reshape(-1)
    for start in range(0, offsets.shape[0], rows_per_chunk):
        block = offsets[start : start + rows_per_chunk]
        values[start : start + block.shape[0]] = smooth_of_outputs((flat_center + block @ basis.T).reshape(-1, *shape))
    value, gradient_z, hessian_z = central_difference_derivatives(values, basis.shape[1], h)
    return anchor, value, coordinates @ gradient_z, coordinates @ hessian_z @ coordinates.T


def central_difference_offsets(dimension: int, step: float) -> np.ndarray:
    """The 2r² + 1 points of the central-difference stencil for value, gradient and
    Hessian in ``dimension`` r: the centre, ±step e_i, and ±step e_i ± step e_j (i < j)."""
    eye = np.eye(dimension) * step
    upper_i, upper_j = np.triu_indices(dimension, k=1)
    cross, other = eye[upper_i], eye[upper_j]
    return np.concatenate([np.zeros((1, dimension)), eye, -eye, cross + other, cross - other, -cross + other, -cross - other])


def central_difference_derivatives(values: np.ndarray, dimension: int, step: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Value, gradient and Hessian from a function's values on
    :func:`central_difference_offsets` (same dimension and step)."""
    r = dimension
    upper_i, upper_j = np.triu_indices(r, k=1)
    center, plus, minus = values[0], values[1 : r + 1], values[r + 1 : 2 * r + 1]
    pairs = upper_i.size
    pp, pm, mp, mm = (values[2 * r + 1 + q * pairs : 2 * r + 1 + (q + 1) * pairs] for q in range(4))
    gradient = (plus - minus) / (2 * step)
    hessian = np.diag((plus - 2 * center + minus) / step**2)
    hessian[upper_i, upper_j] = hessian[upper_j, upper_i] = (pp - pm - mp + mm) / (4 * step**2)
    return float(center), gradient, hessian


def _output_directions(anchor, outputs_of, rows_per_chunk: int, step: float) -> np.ndarray:
    """``∂o/∂p_i`` at the anchor by central differences: (n, m, k)."""
    n = anchor.size
    directions = []
    for start in range(0, n, max(1, rows_per_chunk // 2)):
        players = np.arange(start, min(n, start + max(1, rows_per_chunk // 2)))
        shifts = np.zeros((players.size, n))
        shifts[np.arange(players.size), players] = step
        forward, backward = outputs_of(anchor + shifts), outputs_of(anchor - shifts)
        directions.append((forward - backward) / (2 * step))
    return np.concatenate(directions)


def _subspace(directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis (L, r) of the directions' leading span and the directions'
    coordinates in it (n, r), from the eigenvectors of their Gram matrix."""
    gram = directions @ directions.T
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
    largest = max(float(eigenvalues[0]), 1e-300)
    keep = min(int(np.sum(eigenvalues > 1e-12 * largest)), MAX_SUBSPACE_RANK)
    keep = max(keep, 1)
    singular = np.sqrt(np.maximum(eigenvalues[:keep], 1e-300))
    basis = directions.T @ (eigenvectors[:, :keep] / singular)
    return basis, directions @ basis
