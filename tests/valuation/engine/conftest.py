"""Helpers for the engine's tests: an independent brute-force Shapley reference and
small games. Nothing here imports Django."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest

from valuation.engine import model_family_names, register_model_family, unregister_model_family
from valuation.engine.simulate import simulate_consortium, simulate_training_run

BUILT_IN_FAMILIES = ("linear", "logistic", "softmax", "mlp")


def brute_force_shapley(game) -> np.ndarray:
    """Average marginal contribution over all n! orders (n <= 7): the textbook definition,
    sharing no code with the engine."""
    n = game.n_players
    orders = list(permutations(range(n)))
    masks = np.zeros((len(orders), n + 1, n), dtype=bool)
    for row, order in enumerate(orders):
        for position, player in enumerate(order):
            masks[row, position + 1 :, player] = True
    values = np.asarray(game.utility(masks.reshape(-1, n))).reshape(len(orders), n + 1)
    shapley = np.zeros(n)
    for row, order in enumerate(orders):
        for position, player in enumerate(order):
            shapley[player] += values[row, position + 1] - values[row, position]
    return shapley / len(orders)


def relative_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


class TableGame:
    """A game given by an arbitrary utility per bitmask, counting its calls."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = np.asarray(table, dtype=np.float64)
        self.n_players = int(np.log2(self.table.size))
        self.calls = 0
        self.rows = 0

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows += coalitions.shape[0]
        keys = np.asarray(coalitions, dtype=np.int64) @ (1 << np.arange(self.n_players))
        return self.table[keys]


@pytest.fixture
def register_family():
    """``register(name, family)`` for one test; the families are unregistered afterwards,
    since the service reads the registry (a leftover would show up in its API)."""
    registered = []

    def register(name, family):
        assert name not in BUILT_IN_FAMILIES
        register_model_family(name, family, replace=True)
        registered.append(name)
        return name

    yield register
    for name in registered:
        if name in model_family_names():
            unregister_model_family(name)


@pytest.fixture(scope="session")
def consortium():
    return simulate_consortium(n_factories=6, seed=7, validation_size=600, rows_range=(150, 500))


@pytest.fixture(scope="session")
def training_run(consortium):
    return simulate_training_run(consortium, rounds=2, seed=7)


# Helpers as fixtures: importing a conftest module by name breaks under importlib mode.
@pytest.fixture(scope="session")
def brute_force():
    return brute_force_shapley


@pytest.fixture(scope="session")
def rel_error():
    return relative_error


@pytest.fixture(scope="session")
def table_game():
    return TableGame
