"""The demo training run: eight factories train a shared failure predictor by FedAvg, and
its valuation.

Called by ``seed_demo`` (the ``demo`` app); idempotent per seed. The numbers come from
:func:`valuation.demo_consortium.simulate` (pure numpy: the AI4I 2020 generation rules,
the factories' regimes, the mislabelled factory, the free rider and the near-copy); here
they go through the same ingestion services the coordinator's API calls: the run is
registered, the governance body uploads its validation set, and every round's global
weights and per-factory updates are uploaded with the example counts the factories report.
"""

from __future__ import annotations

import io

import numpy as np

from consortium.access import Principal
from consortium.demo import demo_principal
from consortium.models import Consortium
from core.errors import InvalidInput
from valuation.demo_ai4i import FEATURE_NAMES
from valuation.demo_consortium import FACTORIES, simulate
from valuation.models import TrainingRun, ValuationRun
from valuation.services import (
    global_weights_upload,
    training_run_create,
    update_upload,
    validation_set_upload,
    valuation_run_start,
)

DEMO_METRIC = "neg_log_loss"
GOVERNANCE_LOGIN = "governance@demo.test"


def demo_run_name(seed: int) -> str:
    """The training run's name; it records the seed that made every number of the run."""
    return f"ai4i-failure-predictor-seed-{seed}"


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def valuation_demo_seed(*, consortium: Consortium, actor: Principal, seed: int) -> TrainingRun:
    """Register the seed's run, its validation set and every FedAvg round; the seed fixes every number."""
    name = demo_run_name(seed)
    existing = TrainingRun.objects.filter(consortium=consortium, name=name).first()
    if existing is not None:
        return existing
    participants = {p.slug: p for p in consortium.participants.filter(slug__in=[f.slug for f in FACTORIES])}
    missing = sorted({f.slug for f in FACTORIES} - set(participants))
    if missing:
        raise InvalidInput(f"The demo consortium lacks the factories {', '.join(missing)}; run seed_demo afresh.")
    demo = simulate(seed)
    spec = [{"name": "coef", "shape": [len(FEATURE_NAMES)], "dtype": "float64"},
            {"name": "intercept", "shape": [], "dtype": "float64"}]
    run = training_run_create(actor=actor, consortium=consortium, name=name, model_family="logistic",
                              task="binary", metric=DEMO_METRIC, parameter_spec=spec)
    # The governance body holds the validation set (reference conditions) and uploads it itself.
    validation_set_upload(actor=demo_principal(GOVERNANCE_LOGIN), training_run=run,
                          data=_npz(X=demo.X_validation, y=demo.y_validation))
    for t, weights in enumerate(demo.global_weights):
        global_weights_upload(actor=actor, training_run=run, round=t, data=_npz(**weights))
        for slug, update in demo.updates[t].items():
            update_upload(actor=actor, training_run=run, round=t, participant=participants[slug],
                          data=_npz(**update), num_examples=demo.num_examples[slug])
    return run


def valuation_demo_value(*, training_run: TrainingRun, actor: Principal, seed: int) -> ValuationRun:
    """Value every round exactly (eight factories: 256 coalitions a round); the workers, or
    without a broker the same code in-process, run once the caller's transaction commits."""
    existing = training_run.valuation_runs.filter(seed=seed).exclude(status=ValuationRun.Status.FAILED).first()
    if existing is not None:
        return existing
    return valuation_run_start(actor=actor, training_run=training_run, method="exact", seed=seed,
                               metric=DEMO_METRIC)
