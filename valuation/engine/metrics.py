"""Validation metrics, batched over coalitions, and their smooth stand-ins.

Every metric takes model outputs of shape (c, m, k) for c coalition models on m
validation rows (k = 1 for regression and binary tasks: the raw score / logit) and
returns c utilities, larger is better. They are written for throughput: one pass of
transcendental work per element where the maths allows it, reusing one buffer.

:func:`smooth_proxy` gives, for each metric, a smooth function of the outputs that
tracks it; the FL control-variate estimator takes a second-order Taylor expansion of
it. For ``neg_log_loss`` and ``neg_rmse`` the proxy *is* the metric.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "TASKS",
    "METRICS",
    "METRICS_BY_TASK",
    "check_labels",
    "check_metric",
    "evaluate_metric",
    "signed_log_loss",
    "smooth_proxy",
    "is_smooth_metric",
    "score_derivatives",
]

# The vocabulary of tasks and metrics (the wire names of DESIGN.md section 4). The service
# takes it from here; model families are in ``families.py``.
TASKS = ("regression", "binary", "multiclass")
METRICS = ("neg_log_loss", "accuracy", "auc", "f1", "neg_rmse")
METRICS_BY_TASK = {
    "regression": ("neg_rmse",),
    "binary": ("neg_log_loss", "accuracy", "auc", "f1"),
    "multiclass": ("neg_log_loss", "accuracy", "f1"),
}
# exp overflows past ~709; softplus(z) equals z to double precision long before that.
_EXP_LIMIT = 700.0


def check_labels(task: str, y, n_classes: int | None) -> None:
    """Raise ``ValueError`` unless the labels ``y`` fit ``task``: 0 or 1 for binary, integers
    from 0 to ``n_classes - 1`` for multiclass, anything for regression (finiteness is the
    caller's check). The one place the label rules live."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if task == "regression":
        return
    try:
        values = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("labels must be numeric") from None
    if task == "binary":
        if not np.all((values == 0) | (values == 1)):
            raise ValueError("binary labels must be 0 or 1")
        return
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"multiclass labels need a number of classes n_classes >= 2, got {n_classes!r}")
    if not np.all((values >= 0) & (values < n_classes) & (values == np.round(values))):
        raise ValueError(f"multiclass labels must be integers from 0 to {n_classes - 1}")


def check_metric(metric: str, task: str, y: np.ndarray, n_classes: int) -> None:
    """Raise ``ValueError`` unless ``metric`` is defined for ``task`` and labels ``y``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")
    if metric not in METRICS_BY_TASK[task]:
        raise ValueError(f"metric {metric!r} is not defined for task {task!r}; use one of {METRICS_BY_TASK[task]}")
    check_labels(task, y, n_classes)
    if metric == "auc" and y.min() == y.max():
        raise ValueError("auc needs both classes in the validation labels")


def is_smooth_metric(metric: str) -> bool:
    return metric in ("neg_log_loss", "neg_rmse")


def evaluate_metric(metric: str, task: str, outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Utilities (c,) of outputs (c, m, k). May overwrite ``outputs`` (it is scratch)."""
    if task != "multiclass":
        scores = outputs[:, :, 0]
        if metric == "neg_log_loss":
            return -_binary_log_loss(scores, y)
        if metric == "accuracy":
            return ((scores > 0) == (y > 0.5)).mean(axis=1)
        if metric == "auc":
            return _auc(scores, y)
        if metric == "f1":
            return _binary_f1(scores > 0, y > 0.5)
        return -np.sqrt(np.mean((scores - y) ** 2, axis=1))
    labels = y.astype(np.intp)
    if metric == "neg_log_loss":
        return -_softmax_log_loss(outputs, labels)
    predicted = outputs.argmax(axis=2)
    if metric == "accuracy":
        return (predicted == labels).mean(axis=1)
    return _macro_f1(predicted, labels, outputs.shape[2])


def _binary_log_loss(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    # softplus(z) - y z == softplus((1 - 2y) z): one sign flip instead of a dot product
    # (BLAS rounding would depend on the batch; see aggregation.py).
    return signed_log_loss(scores * (1.0 - 2.0 * y), bounded=False)


def signed_log_loss(signed_scores: np.ndarray, *, bounded: bool) -> np.ndarray:
    """Mean of ``softplus(t)`` per row, overwriting ``signed_scores``.

    ``log(1 + exp(t))`` in place is ~10x faster than ``np.logaddexp`` and ~30 % faster
    than ``log1p(exp(t))`` (numpy's ``log`` is vectorised, ``log1p`` is not); where
    ``exp(t)`` is below 1e-16 it rounds the term to 0 instead of ``exp(t)``, an absolute
    error under 1e-16 per row. ``bounded`` says no |t| can exceed 700, so the overflow
    guard (an extra pass) can be skipped.
    """
    buffer = signed_scores
    large = None
    if not bounded:
        overflow = buffer > _EXP_LIMIT
        if overflow.any():
            large = buffer[overflow]
        np.minimum(buffer, _EXP_LIMIT, out=buffer)
    np.exp(buffer, out=buffer)
    np.add(buffer, 1.0, out=buffer)
    np.log(buffer, out=buffer)
    if large is not None:
        buffer[overflow] = large
    return buffer.sum(axis=1) / buffer.shape[1]


def _softmax_log_loss(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    picked = np.take_along_axis(outputs, labels[None, :, None], axis=2)[:, :, 0]
    peak = outputs.max(axis=2, keepdims=True)
    np.subtract(outputs, peak, out=outputs)
    np.exp(outputs, out=outputs)
    log_normaliser = np.log(outputs.sum(axis=2)) + peak[:, :, 0]
    return (log_normaliser - picked).mean(axis=1)


def _auc(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # scipy ships with shap; imported lazily to keep import light

    positive = y > 0.5
    n_positive = int(positive.sum())
    n_negative = y.size - n_positive
    ranks = rankdata(scores, axis=1)  # ties get average ranks: the Mann-Whitney AUC
    return (ranks[:, positive].sum(axis=1) - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative)


def _binary_f1(predicted: np.ndarray, actual: np.ndarray) -> np.ndarray:
    true_positive = predicted @ actual.astype(np.float64)
    denominator = predicted.sum(axis=1) + actual.sum()
    return np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)


def _macro_f1(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    scores = np.zeros(predicted.shape[0])
    for label in range(n_classes):
        scores += _binary_f1(predicted == label, labels == label)
    return scores / n_classes


def smooth_proxy(metric: str, task: str, y: np.ndarray, *, scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth function of outputs (c, m, k) that tracks ``metric``.

    ``scale`` is the typical size of output changes between coalitions; step
    functions (accuracy, F1, AUC) are smoothed with sigmoids of that width, which is
    the expected metric when outputs are jittered by that much.
    """
    if is_smooth_metric(metric):
        return lambda outputs: evaluate_metric(metric, task, outputs.copy(), y)
    width = max(float(scale), 1e-12)
    if task == "multiclass":
        labels = y.astype(np.intp)

        def soft_class_probabilities(outputs: np.ndarray) -> np.ndarray:
            shifted = outputs / width
            shifted -= shifted.max(axis=2, keepdims=True)
            np.exp(shifted, out=shifted)
            return shifted / shifted.sum(axis=2, keepdims=True)

        if metric == "accuracy":
            return lambda outputs: np.take_along_axis(
                soft_class_probabilities(outputs), labels[None, :, None], axis=2
            )[:, :, 0].mean(axis=1)

        def soft_macro_f1(outputs: np.ndarray) -> np.ndarray:
            probabilities = soft_class_probabilities(outputs)
            total = np.zeros(outputs.shape[0])
            for label in range(probabilities.shape[2]):
                actual = (labels == label).astype(np.float64)
                true_positive = probabilities[:, :, label] @ actual
                total += 2 * true_positive / (probabilities[:, :, label].sum(axis=1) + actual.sum() + 1e-12)
            return total / probabilities.shape[2]

        return soft_macro_f1
    signs = np.where(y > 0.5, 1.0, -1.0)
    actual = (y > 0.5).astype(np.float64)
    if metric == "accuracy":
        return lambda outputs: _sigmoid(outputs[:, :, 0] * signs / width).mean(axis=1)
    if metric == "f1":

        def soft_f1(outputs: np.ndarray) -> np.ndarray:
            probabilities = _sigmoid(outputs[:, :, 0] / width)
            return 2 * (probabilities @ actual) / (probabilities.sum(axis=1) + actual.sum())

        return soft_f1
    # AUC: a sigmoid of every positive-negative score gap, on an evenly spaced subsample
    # of at most 256 x 256 pairs so the proxy stays cheap for large validation sets.
    positives = np.flatnonzero(actual > 0)
    negatives = np.flatnonzero(actual == 0)
    positives = positives[np.linspace(0, positives.size - 1, min(256, positives.size)).astype(np.intp)]
    negatives = negatives[np.linspace(0, negatives.size - 1, min(256, negatives.size)).astype(np.intp)]

    def soft_auc(outputs: np.ndarray) -> np.ndarray:
        scores = outputs[:, :, 0]
        gaps = scores[:, positives, None] - scores[:, None, negatives]
        return _sigmoid(gaps / width).mean(axis=(1, 2))

    return soft_auc


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))


def score_derivatives(
    metric: str, y: np.ndarray, scores: np.ndarray, *, scale: float
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Value, gradient and Hessian of the smooth proxy with respect to one score per row.

    Returns ``(value, gradient (m,), diagonal (m,), vectors (m, r), core (r, r))`` with
    Hessian ``diag(diagonal) + vectors @ core @ vectors.T`` (metrics built from a few
    row sums have a low-rank coupling between rows). None where only the generic
    finite-difference route applies (AUC's pairwise proxy).
    """
    m = scores.size
    width = max(float(scale), 1e-12)
    no_vectors, no_core = np.zeros((m, 0)), np.zeros((0, 0))
    if metric == "neg_log_loss":
        probability = _sigmoid(scores)
        loss = np.log1p(np.exp(np.minimum(scores, _EXP_LIMIT))) - y * scores
        return -float(loss.mean()), -(probability - y) / m, -probability * (1 - probability) / m, no_vectors, no_core
    if metric == "accuracy":
        signs = np.where(y > 0.5, 1.0, -1.0)
        smooth = _sigmoid(signs * scores / width)
        slope = smooth * (1 - smooth)
        return float(smooth.mean()), signs * slope / (width * m), slope * (1 - 2 * smooth) / (width**2 * m), no_vectors, no_core
    if metric == "neg_rmse":
        error = scores - y
        mean_square = max(float(np.mean(error**2)), 1e-300)
        root = np.sqrt(mean_square)
        first = 2 * error / m  # d(mean square)/d score
        core = np.array([[1.0 / (4 * mean_square**1.5)]])
        return -root, -first / (2 * root), np.full(m, -1.0 / (m * root)), first[:, None], core
    if metric == "f1":
        actual = (y > 0.5).astype(np.float64)
        smooth = _sigmoid(scores / width)
        slope = smooth * (1 - smooth) / width
        bend = slope * (1 - 2 * smooth) / width
        hits, predicted = float(actual @ smooth), float(smooth.sum())
        denominator = predicted + actual.sum()
        d_hits, d_predicted = 2 / denominator, -2 * hits / denominator**2
        core = np.array([[0.0, -2 / denominator**2], [-2 / denominator**2, 4 * hits / denominator**3]])
        gradient = d_hits * actual * slope + d_predicted * slope
        diagonal = d_hits * actual * bend + d_predicted * bend
        return 2 * hits / denominator, gradient, diagonal, np.stack([actual * slope, slope], axis=1), core
    return None
