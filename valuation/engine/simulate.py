"""Simulated predictive-maintenance consortia, for the benchmarks and tests (the demo has its
own AI4I 2020 generator: valuation/demo_ai4i.py).

Each factory logs machine sensor readings (temperature, vibration, pressure, rotation
speed, torque, tool wear, humidity, load) and whether the machine failed within the
next shift. Factories differ (non-IID): their machines run hotter or faster, their
failure base rates and sizes differ. Optional faults make some factories' data worse:
``flipped_labels`` (a labelling bug: failure and no-failure swapped) and
``noisy_sensors`` (badly calibrated sensors: heavy noise on every reading).

:func:`simulate_training_run` then trains a shared model by FedAvg with a few local
gradient steps per round and returns per-round global weights, updates and counts in
the engine's wire layout. Everything is driven by ``numpy.random.Generator(PCG64(seed))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .fl import FLRoundGame, MultiRoundGame

__all__ = ["Factory", "Consortium", "TrainingRun", "simulate_consortium", "simulate_training_run", "FEATURES"]

FEATURES = ("temperature", "vibration", "pressure", "rotation_speed", "torque", "tool_wear", "humidity", "load")
_TRUE_COEF = np.array([0.9, 1.2, -0.4, 0.5, 0.8, 1.4, 0.2, 0.6])


@dataclass(frozen=True)
class Factory:
    name: str
    X: np.ndarray
    y: np.ndarray
    fault: str | None = None


@dataclass(frozen=True)
class Consortium:
    factories: list[Factory]
    X_validation: np.ndarray
    y_validation: np.ndarray
    features: tuple[str, ...] = FEATURES


@dataclass
class TrainingRun:
    family: str
    task: str
    participants: list[str]
    global_weights: list[dict[str, np.ndarray]] = field(default_factory=list)
    updates: list[list[dict[str, np.ndarray]]] = field(default_factory=list)
    num_examples: list[list[int]] = field(default_factory=list)
    round_participants: list[list[str]] = field(default_factory=list)

    def round_game(self, round_index: int, *, consortium: Consortium, metric: str, **kwargs) -> FLRoundGame:
        return FLRoundGame(
            family=self.family,
            task=self.task,
            metric=metric,
            global_weights=self.global_weights[round_index],
            updates=self.updates[round_index],
            num_examples=self.num_examples[round_index],
            X=consortium.X_validation,
            y=consortium.y_validation,
            participants=self.round_participants[round_index],
            **kwargs,
        )

    def multi_round_game(self, *, consortium: Consortium, metric: str) -> MultiRoundGame:
        rounds = [self.round_game(t, consortium=consortium, metric=metric) for t in range(len(self.updates))]
        return MultiRoundGame(rounds=rounds, players=self.participants)


def _failure_labels(X: np.ndarray, offset: float, rng: np.random.Generator) -> np.ndarray:
    # Wear and torque interact (a worn tool under load fails), on top of a linear risk.
    risk = X @ _TRUE_COEF + 0.8 * X[:, 4] * X[:, 5] - 1.5 + offset
    return (rng.random(X.shape[0]) < 1.0 / (1.0 + np.exp(-risk))).astype(np.float64)


def simulate_consortium(
    *,
    n_factories: int = 10,
    seed: int = 0,
    flipped_labels: tuple[int, ...] = (0,),
    noisy_sensors: tuple[int, ...] = (1,),
    validation_size: int = 3000,
    rows_range: tuple[int, int] = (300, 1500),
) -> Consortium:
    rng = np.random.Generator(np.random.PCG64(seed))
    d = len(FEATURES)
    shifts = rng.normal(0.0, 0.6, size=(n_factories, d))
    scales = rng.uniform(0.7, 1.3, size=(n_factories, d))
    offsets = rng.normal(0.0, 0.5, size=n_factories)
    factories = []
    for index in range(n_factories):
        rows = int(rng.integers(rows_range[0], rows_range[1] + 1))
        X = shifts[index] + scales[index] * rng.normal(size=(rows, d))
        y = _failure_labels(X, offsets[index], rng)
        fault = None
        if index in flipped_labels:
            y, fault = 1.0 - y, "flipped_labels"
        elif index in noisy_sensors:
            X, fault = X + rng.normal(0.0, 2.0, size=X.shape), "noisy_sensors"
        factories.append(Factory(name=f"factory-{index:02d}", X=X, y=y, fault=fault))
    # The governance body's validation set: clean readings from every factory's regime.
    which = rng.integers(0, n_factories, size=validation_size)
    X_validation = shifts[which] + scales[which] * rng.normal(size=(validation_size, d))
    y_validation = _failure_labels(X_validation, offsets[which], rng)
    return Consortium(factories=factories, X_validation=X_validation, y_validation=y_validation)


def simulate_training_run(
    consortium: Consortium,
    *,
    rounds: int = 3,
    local_steps: int = 5,
    learning_rate: float = 0.3,
    participation: float = 1.0,
    seed: int = 0,
) -> TrainingRun:
    """FedAvg of logistic regression; ``participation < 1`` leaves random factories out of rounds."""
    rng = np.random.Generator(np.random.PCG64(seed))
    names = [f.name for f in consortium.factories]
    run = TrainingRun(family="logistic", task="binary", participants=names)
    d = consortium.X_validation.shape[1]
    weights = {"coef": np.zeros(d), "intercept": np.zeros(())}
    for _ in range(rounds):
        present = [i for i in range(len(names)) if rng.random() < participation] or [0]
        updates, counts = [], []
        for index in present:
            factory = consortium.factories[index]
            local = _local_training(weights, factory.X, factory.y, local_steps, learning_rate)
            updates.append({k: local[k] - weights[k] for k in weights})
            counts.append(int(factory.y.size))
        run.global_weights.append({k: v.copy() for k, v in weights.items()})
        run.updates.append(updates)
        run.num_examples.append(counts)
        run.round_participants.append([names[i] for i in present])
        total = float(sum(counts))
        weights = {k: weights[k] + sum(c * u[k] for c, u in zip(counts, updates)) / total for k in weights}
    return run


def _local_training(weights, X, y, steps, learning_rate):
    coef, intercept = weights["coef"].copy(), float(weights["intercept"])
    for _ in range(steps):
        probability = 1.0 / (1.0 + np.exp(-(X @ coef + intercept)))
        error = probability - y
        coef -= learning_rate * (X.T @ error) / y.size
        intercept -= learning_rate * error.mean()
    return {"coef": coef, "intercept": np.array(intercept)}
