"""The demo consortium's story in numbers: eight factories, their records, and FedAvg.

Pure numpy, no Django (``valuation.demo`` uploads what this computes through the
ingestion services). One seed fixes every number: the factories' sizes and records, the
governance body's validation set, the mislabelled share and every round's weights and
updates. Draws come from one ``numpy.random.Generator(PCG64(seed))`` in a fixed order.

The factories follow the AI4I 2020 rules (:mod:`valuation.demo_ai4i`), each under its own
regime. Three of them are there to be found by the valuation:

- ``danube-drives``: a maintenance-system migration scrambled its failure column, so
  35 to 45 % of its labels are flipped;
- ``elbe-extrusion``: a free rider; it reports its full record count but sends its true
  update scaled by 1e-3 plus tiny noise (it never really trains);
- ``castile-casting``: holds a near-copy of ``baltic-bearings``' records (the same
  maintenance contractor delivered both), the same rows with small sensor jitter.

The model is a logistic regression of machine failure on the standardised features of
:func:`valuation.demo_ai4i.features`; the global model starts at zero weights and the
log-odds of the reference failure rate, so that the first rounds learn the features and
not the base rate. Each round every factory runs :data:`LOCAL_STEPS` full-batch gradient
steps of the log-loss from the global model, and the coordinator averages the updates
weighted by the reported example counts (FedAvg).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from valuation.demo_ai4i import (
    FEATURE_NAMES,
    REFERENCE_FAILURE_RATE,
    Regime,
    features,
    flip_labels,
    generate,
    jitter,
)

__all__ = ["FACTORIES", "FREE_RIDER", "HONEST", "MISLABELLED", "NEAR_COPY", "DemoConsortium", "FactoryProfile",
           "simulate"]

HONEST, MISLABELLED, FREE_RIDER, NEAR_COPY = "honest", "mislabelled", "free_rider", "near_copy"

# A short, cautious first campaign. With long local training or many rounds FedAvg settles,
# the honest updates then mostly undo the mislabelled factory's pull on the intercept, and
# the free rider's diluting of every average (which dilutes that harm too) earns as much as
# an honest update: Shapley credits it faithfully, but the demo would show the wrong story.
# These settings put both faulty factories lowest for every seed from 0 to 99.
ROUNDS = 5
LOCAL_STEPS = 3
LEARNING_RATE = 0.5
VALIDATION_SIZE = 4000
MISLABELLED_SHARE = (0.35, 0.45)
FREE_RIDER_SCALE = 1e-3
FREE_RIDER_NOISE = 1e-6


@dataclass(frozen=True)
class FactoryProfile:
    """One participant of the demo: how its machines run and what is wrong with its data."""

    slug: str
    regime: Regime
    size: tuple[int, int]  # records, drawn uniformly in this range (inclusive)
    role: str = HONEST
    copy_of: str | None = None  # a near-copy's source


FACTORIES = (
    FactoryProfile("aurora-press", Regime(ambient_offset_k=1.0), (6000, 8000)),
    FactoryProfile("baltic-bearings", Regime(quality_shares=(0.3, 0.5, 0.2), ambient_offset_k=-3.0), (3000, 4500)),
    # Baltic's rows again: no regime or size of its own.
    FactoryProfile("castile-casting", Regime(), (0, 0), NEAR_COPY, copy_of="baltic-bearings"),
    FactoryProfile("danube-drives", Regime(quality_shares=(0.6, 0.3, 0.1)), (2000, 3000), MISLABELLED),
    FactoryProfile("elbe-extrusion", Regime(torque_offset_nm=2.0), (6500, 8000), FREE_RIDER),
    FactoryProfile("fjord-forge", Regime(ambient_offset_k=-5.0, torque_offset_nm=4.0), (2000, 3500)),
    FactoryProfile("garonne-gears", Regime(quality_shares=(0.3, 0.3, 0.4), ambient_offset_k=4.0,
                                           cooling_offset_k=-0.3), (1500, 2500)),
    FactoryProfile("hansa-hydraulics", Regime(quality_shares=(0.7, 0.2, 0.1), speed_offset_rpm=60.0), (2500, 4000)),
)


@dataclass
class DemoConsortium:
    """What the seed produced, in the wire layout of a logistic training run."""

    seed: int
    X: dict[str, np.ndarray]  # by slug, standardised features
    y: dict[str, np.ndarray]  # by slug, the labels as the factory holds them
    X_validation: np.ndarray
    y_validation: np.ndarray
    mislabelled_share: float
    global_weights: list[dict[str, np.ndarray]] = field(default_factory=list)
    updates: list[dict[str, dict[str, np.ndarray]]] = field(default_factory=list)  # per round, by slug
    num_examples: dict[str, int] = field(default_factory=dict)  # as reported, by slug

    @property
    def slugs(self) -> list[str]:
        return [f.slug for f in FACTORIES]


def _local_update(weights: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """LOCAL_STEPS steps of full-batch gradient descent on the mean log-loss; the difference."""
    coef, intercept = weights["coef"].copy(), float(weights["intercept"])
    for _ in range(LOCAL_STEPS):
        error = 1.0 / (1.0 + np.exp(-(X @ coef + intercept))) - y
        coef -= LEARNING_RATE * (X.T @ error) / y.size
        intercept -= LEARNING_RATE * float(error.mean())
    return {"coef": coef - weights["coef"], "intercept": np.array(intercept - float(weights["intercept"]))}


def simulate(seed: int, *, rounds: int = ROUNDS) -> DemoConsortium:
    """The demo consortium of ``seed``: data, validation set and ``rounds`` FedAvg rounds."""
    rng = np.random.Generator(np.random.PCG64(seed))
    records = {}
    for profile in FACTORIES:
        if profile.role == NEAR_COPY:
            records[profile.slug] = jitter(rng, records[profile.copy_of])
        else:
            records[profile.slug] = generate(rng, int(rng.integers(profile.size[0], profile.size[1] + 1)),
                                             profile.regime)
    share = float(rng.uniform(*MISLABELLED_SHARE))
    X, y = {}, {}
    for profile in FACTORIES:
        X[profile.slug] = features(records[profile.slug])
        labels = records[profile.slug].failure.astype(np.float64)
        y[profile.slug] = flip_labels(rng, labels, share) if profile.role == MISLABELLED else labels
    validation = generate(rng, VALIDATION_SIZE)
    demo = DemoConsortium(seed=seed, X=X, y=y, X_validation=features(validation),
                          y_validation=validation.failure.astype(np.float64), mislabelled_share=share,
                          num_examples={slug: int(labels.size) for slug, labels in y.items()})
    prior = math.log(REFERENCE_FAILURE_RATE / (1.0 - REFERENCE_FAILURE_RATE))
    weights = {"coef": np.zeros(len(FEATURE_NAMES)), "intercept": np.array(prior)}
    for _ in range(rounds):
        updates = {}
        for profile in FACTORIES:
            update = _local_update(weights, X[profile.slug], y[profile.slug])
            if profile.role == FREE_RIDER:
                update = {name: FREE_RIDER_SCALE * value + rng.normal(0.0, FREE_RIDER_NOISE, size=value.shape)
                          for name, value in update.items()}
            updates[profile.slug] = update
        demo.global_weights.append({name: value.copy() for name, value in weights.items()})
        demo.updates.append(updates)
        total = float(sum(demo.num_examples.values()))
        weights = {name: weights[name] + sum(demo.num_examples[slug] * updates[slug][name] for slug in updates) / total
                   for name in weights}
    return demo
