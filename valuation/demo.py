"""A demo training run: simulated factories train a shared failure predictor by FedAvg,
and its valuation.

Called by ``seed_demo`` (the ``demo`` app); idempotent per seed.

Each factory holds sensor readings (features) and failure labels from its own machines,
with its own operating regime (non-IID). One factory's labels are flipped and one has
noisy sensors, so that contribution values have something to find.
"""

from __future__ import annotations

import io

import numpy as np

from consortium.access import Principal
from consortium.models import Consortium
from valuation.models import TrainingRun, ValuationRun
from valuation.services import (
    global_weights_upload,
    training_run_create,
    update_upload,
    validation_set_upload,
    valuation_run_start,
)

FEATURES = 6
TRUE_COEF = np.array([1.4, -0.9, 0.7, 0.0, 0.5, -1.1])


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _factory_data(rng: np.random.Generator, rows: int, shift: float, *, flip: bool, noise: float):
    X = rng.normal(loc=shift, scale=1.0, size=(rows, FEATURES))
    logits = X @ TRUE_COEF - 0.3
    y = (rng.random(rows) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    if flip:
        y = 1 - y
    return X + rng.normal(scale=noise, size=X.shape), y


def _local_update(coef, intercept, X, y, *, steps: int = 20, rate: float = 0.3):
    """A few steps of local gradient descent on the log-loss; returns (Δcoef, Δintercept)."""
    w, b = coef.copy(), float(intercept)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        w -= rate * X.T @ (p - y) / len(y)
        b -= rate * float(np.mean(p - y))
    return w - coef, np.float64(b - intercept)


def valuation_demo_seed(*, consortium: Consortium, actor: Principal, seed: int, rounds: int = 3) -> TrainingRun:
    """Register a run and upload ``rounds`` rounds of FedAvg; the seed fixes every number."""
    name = f"press-failure-demo-seed-{seed}"
    existing = TrainingRun.objects.filter(consortium=consortium, name=name).first()
    if existing is not None:
        return existing
    spec = [{"name": "coef", "shape": [FEATURES], "dtype": "float64"},
            {"name": "intercept", "shape": [], "dtype": "float64"}]
    run = training_run_create(actor=actor, consortium=consortium, name=name, model_family="logistic",
                              task="binary", metric="neg_log_loss", parameter_spec=spec)
    rng = np.random.default_rng(seed)
    participants = list(consortium.participants.order_by("slug"))
    local = {
        p.slug: _factory_data(rng, int(rng.integers(150, 600)), shift=rng.normal(scale=0.5),
                              flip=(i == len(participants) - 1), noise=2.5 if i == len(participants) - 2 else 0.1)
        for i, p in enumerate(participants)
    }
    X_val, y_val = _factory_data(rng, 800, shift=0.0, flip=False, noise=0.1)
    validation_set_upload(actor=actor, training_run=run, data=_npz(X=X_val, y=y_val))
    coef, intercept = np.zeros(FEATURES), np.float64(0.0)
    for t in range(rounds):
        global_weights_upload(actor=actor, training_run=run, round=t, data=_npz(coef=coef, intercept=intercept))
        deltas = []
        for participant in participants:
            X, y = local[participant.slug]
            d_coef, d_intercept = _local_update(coef, intercept, X, y)
            update_upload(actor=actor, training_run=run, round=t, participant=participant,
                          data=_npz(coef=d_coef, intercept=d_intercept), num_examples=len(y))
            deltas.append((len(y), d_coef, d_intercept))
        total = sum(n for n, _, _ in deltas)
        coef = coef + sum(n * d for n, d, _ in deltas) / total
        intercept = np.float64(intercept + sum(n * d for n, _, d in deltas) / total)
    return run


def valuation_demo_value(*, training_run: TrainingRun, actor: Principal, seed: int) -> ValuationRun:
    """Value every round exactly (the demo has few factories); the workers, or without a
    broker the same code in-process, run once the caller's transaction commits."""
    existing = training_run.valuation_runs.filter(seed=seed).exclude(status=ValuationRun.Status.FAILED).first()
    if existing is not None:
        return existing
    return valuation_run_start(actor=actor, training_run=training_run, method="exact", seed=seed)
