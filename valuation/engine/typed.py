"""Typed-participant FL rounds: large rounds whose exact Shapley values are known.

A round of n participants in a few *types*, where the participants of a type send the
same update with the same example count, has a utility that depends on a coalition only
through its *count vector* ``c`` (how many of each type it holds). The Shapley value of a
player of type t is then a sum over count vectors instead of 2^n coalitions:

    φ_t = Σ_{c : c_t < m_t} w(|c|) · C(m_t - 1, c_t) · Π_{s≠t} C(m_s, c_s) · (U(c + e_t) - U(c))

with ``w(k) = k! (n-k-1)! / n!`` and ``m`` the multiplicities: Π (m_s + 1) utilities, no
sampling. With three or four types that is exact Shapley values for rounds of 50 to
1,000 participants, which is what the engine's tests and ``benchmarks/valuation_scale.py``
measure the estimators against. The estimators are not told about the types: they see an
ordinary :class:`~valuation.engine.fl.FLRoundGame`.

The count-vector utilities are computed here from the type's outputs (or parameters),
not through the game's coalition aggregator; the two agree to ~1e-13 relative (the
aggregator's fixed-point grid), far below any estimator's error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import lgamma

import numpy as np

from .fl import FLRoundGame, MultiRoundGame
from .metrics import evaluate_metric
from .simulate import simulate_consortium, simulate_training_run

__all__ = [
    "ParticipantType",
    "TypedRound",
    "TypedRun",
    "count_vector_shapley",
    "simulate_typed_round",
    "simulate_typed_run",
    "MAX_COUNT_VECTORS",
]

# The count-vector grid is held in memory with one utility each.
MAX_COUNT_VECTORS = 20_000_000
_CHUNK_ROWS = 1 << 21  # outputs per chunk when computing grid utilities


@dataclass(frozen=True)
class ParticipantType:
    """``count`` participants that each send ``update`` with ``num_examples`` examples."""

    update: Mapping[str, np.ndarray]
    num_examples: float
    count: int


def count_vector_shapley(
    multiplicities: Sequence[int], utility_of_counts: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Exact Shapley value of one player of each type (module docstring).

    ``utility_of_counts(C)`` maps count vectors (K, T) to utilities (K,); it is called
    on the whole grid ``Π [0, m_t]`` in C order (in chunks if it wishes).
    """
    m = np.asarray(multiplicities, dtype=np.int64)
    if m.ndim != 1 or m.size == 0 or np.any(m < 1):
        raise ValueError("multiplicities must be a non-empty list of positive counts")
    grid_shape = tuple(int(v) + 1 for v in m)
    size = int(np.prod(grid_shape, dtype=np.float64))
    if size > MAX_COUNT_VECTORS:
        raise ValueError(f"{size:,} count vectors exceed the limit of {MAX_COUNT_VECTORS:,}; use fewer or smaller types")
    counts = np.stack(np.unravel_index(np.arange(size), grid_shape), axis=1)
    table = np.asarray(utility_of_counts(counts), dtype=np.float64).reshape(grid_shape)
    n = int(m.sum())
    log_weight = np.array([lgamma(k + 1) + lgamma(n - k) - lgamma(n + 1) for k in range(n)])
    values = np.empty(m.size)
    for t in range(m.size):
        marginal = np.diff(table, axis=t)  # U(c + e_t) - U(c) for c_t < m_t
        log_count = np.zeros(marginal.shape)
        total = np.zeros(marginal.shape, dtype=np.int64)
        for s in range(m.size):
            top = int(m[s]) - (1 if s == t else 0)
            c = np.arange(top + 1)
            log_binomial = np.array([lgamma(top + 1) - lgamma(k + 1) - lgamma(top - k + 1) for k in c])
            shape = [1] * m.size
            shape[s] = c.size
            log_count = log_count + log_binomial.reshape(shape)
            total = total + c.reshape(shape)
        values[t] = float(np.sum(np.exp(log_count + log_weight[total]) * marginal))
    return values


class TypedRound:
    """One FL round of typed participants: the engine's game and its exact values."""

    def __init__(
        self,
        *,
        family: str,
        task: str,
        metric: str,
        global_weights: Mapping[str, np.ndarray],
        types: Sequence[ParticipantType],
        X: np.ndarray,
        y: np.ndarray,
        participants: Sequence[str] | None = None,
        memory_limit_bytes: int | None = None,
    ) -> None:
        self.types = list(types)
        self.multiplicities = np.array([t.count for t in self.types], dtype=np.int64)
        self.player_types = np.repeat(np.arange(len(self.types)), self.multiplicities)
        extra = {} if memory_limit_bytes is None else {"memory_limit_bytes": memory_limit_bytes}
        self.game = FLRoundGame(
            family=family,
            task=task,
            metric=metric,
            global_weights=global_weights,
            updates=[self.types[t].update for t in self.player_types],
            num_examples=[self.types[t].num_examples for t in self.player_types],
            X=X,
            y=y,
            participants=participants or [f"type{t}-{i:04d}" for i, t in enumerate(self.player_types)],
            **extra,
        )

    @property
    def n_players(self) -> int:
        return self.game.n_players

    def type_values(self) -> np.ndarray:
        """Exact Shapley value of one participant of each type."""
        return count_vector_shapley(self.multiplicities, self.utility_of_counts)

    def exact_values(self) -> np.ndarray:
        """Exact Shapley value of every participant, in the game's order."""
        return self.type_values()[self.player_types]

    def utility_of_counts(self, counts: np.ndarray) -> np.ndarray:
        """Utilities of coalitions given by count vectors (K, T), computed directly from
        the types' FedAvg mixture (independent of the game's aggregator)."""
        game = self.game
        examples = np.array([t.num_examples for t in self.types], dtype=np.float64)
        weighted = np.asarray(counts, dtype=np.float64) * examples
        totals = weighted.sum(axis=1, keepdims=True)
        mixture = np.divide(weighted, totals, out=np.zeros_like(weighted), where=totals > 0)
        per_chunk = max(1, _CHUNK_ROWS // (game.X.shape[0] * game.n_outputs))
        values = np.empty(mixture.shape[0])
        for start in range(0, mixture.shape[0], per_chunk):
            outputs = self._outputs(mixture[start : start + per_chunk])
            values[start : start + per_chunk] = evaluate_metric(game.metric, game.task, outputs, game.y)
        return values

    def _outputs(self, mixture: np.ndarray) -> np.ndarray:
        game = self.game
        params = {
            key: game.global_weights[key][None]
            + np.tensordot(mixture, np.stack([np.asarray(t.update[key], dtype=np.float64) for t in self.types]), axes=(1, 0))
            for key in game.global_weights
        }
        return game.family.predict(params, game.X)


def simulate_typed_round(
    multiplicities: Sequence[int],
    *,
    seed: int = 0,
    metric: str = "neg_log_loss",
    validation_size: int = 3000,
    memory_limit_bytes: int | None = None,
) -> TypedRound:
    """A logistic-regression round of ``sum(multiplicities)`` factories in
    ``len(multiplicities)`` types, from the simulated predictive-maintenance consortium
    (round 1 of a FedAvg run, so the global model is not the all-zero start). The first
    type's factory has flipped labels and the second noisy sensors, as in
    :func:`~valuation.engine.simulate.simulate_consortium`."""
    n_types = len(multiplicities)
    consortium = simulate_consortium(n_factories=n_types, seed=seed, validation_size=validation_size)
    run = simulate_training_run(consortium, rounds=2, seed=seed)
    return TypedRound(
        family=run.family,
        task=run.task,
        metric=metric,
        global_weights=run.global_weights[1],
        types=[
            ParticipantType(update=update, num_examples=float(count), count=int(m))
            for update, count, m in zip(run.updates[1], run.num_examples[1], multiplicities)
        ],
        X=consortium.X_validation,
        y=consortium.y_validation,
        memory_limit_bytes=memory_limit_bytes,
    )


@dataclass(frozen=True)
class TypedRun:
    """Several typed rounds over one set of participants: the multi-round game and its
    exact values (the sum of the rounds' values; absent participants get 0 there)."""

    rounds: list[TypedRound]
    participants: list[str]
    round_members: list[np.ndarray]  # indices of each round's participants

    @property
    def game(self) -> MultiRoundGame:
        return MultiRoundGame(rounds=[r.game for r in self.rounds], players=self.participants)

    def exact_per_round(self) -> np.ndarray:
        per_round = np.zeros((len(self.rounds), len(self.participants)))
        for t, (typed, members) in enumerate(zip(self.rounds, self.round_members)):
            per_round[t, members] = typed.exact_values()
        return per_round

    def exact_values(self) -> np.ndarray:
        return self.exact_per_round().sum(axis=0)


def simulate_typed_run(
    group_sizes: Sequence[int],
    *,
    rounds: int,
    participation: float = 1.0,
    seed: int = 0,
    metric: str = "neg_log_loss",
    validation_size: int = 1000,
) -> TypedRun:
    """``sum(group_sizes)`` participants in groups that train like one simulated factory
    each, over ``rounds`` FedAvg rounds; each participant takes part in a round with
    probability ``participation`` (at least one participant per round). Within a round
    the present members of a group are one type, so every round's values are exact."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1])))
    consortium = simulate_consortium(n_factories=len(group_sizes), seed=seed, validation_size=validation_size)
    run = simulate_training_run(consortium, rounds=rounds, seed=seed)
    groups = np.repeat(np.arange(len(group_sizes)), group_sizes)
    participants = [f"group{g}-{i:04d}" for i, g in enumerate(groups)]
    typed_rounds, members_of_rounds = [], []
    for t in range(rounds):
        present = np.flatnonzero(rng.random(groups.size) < participation)
        if present.size == 0:
            present = np.array([int(rng.integers(groups.size))])
        present = present[np.argsort(groups[present], kind="stable")]  # grouped, as TypedRound orders players
        kinds, counts = np.unique(groups[present], return_counts=True)
        typed = TypedRound(
            family=run.family,
            task=run.task,
            metric=metric,
            global_weights=run.global_weights[t],
            types=[
                ParticipantType(update=run.updates[t][g], num_examples=float(run.num_examples[t][g]), count=int(c))
                for g, c in zip(kinds, counts)
            ],
            X=consortium.X_validation,
            y=consortium.y_validation,
            participants=[participants[i] for i in present],
        )
        typed_rounds.append(typed)
        members_of_rounds.append(present)
    return TypedRun(rounds=typed_rounds, participants=participants, round_members=members_of_rounds)
