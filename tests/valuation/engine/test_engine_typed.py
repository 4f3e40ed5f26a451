"""Typed-participant rounds: their count-vector Shapley values are the exact values."""

import numpy as np
import pytest

from valuation.engine import estimate
from valuation.engine.typed import count_vector_shapley, simulate_typed_round, simulate_typed_run

from .conftest import brute_force_shapley


@pytest.mark.parametrize("multiplicities", [[2, 3, 2], [1, 4], [3, 1, 1, 2], [9]])
def test_count_vector_values_equal_exact_enumeration(multiplicities):
    typed = simulate_typed_round(multiplicities, seed=4, validation_size=300)
    np.testing.assert_allclose(typed.exact_values(), estimate(typed.game, method="exact").values, rtol=0, atol=1e-12)


def test_count_vector_values_equal_the_textbook_definition():
    typed = simulate_typed_round([2, 2, 1], seed=6, validation_size=200, metric="accuracy")
    np.testing.assert_allclose(typed.exact_values(), brute_force_shapley(typed.game), atol=1e-12)


def test_typed_values_of_a_large_round_share_out_the_grand_coalitions_gain():
    typed = simulate_typed_round([60, 30, 10], seed=1, validation_size=500)
    n = typed.n_players
    gain = typed.game.utility(np.ones((1, n), dtype=bool))[0] - typed.game.utility(np.zeros((1, n), dtype=bool))[0]
    values = typed.exact_values()
    assert values.shape == (100,)
    assert abs(values.sum() - gain) < 1e-10 * max(1.0, abs(gain))
    assert values[0] < 0 < values[-1]  # the flipped-label type hurts, the clean one helps


def test_count_vector_sum_of_a_symmetric_game_splits_equally():
    # U(c) = (total count)^2: symmetric, so every player gets U(N)/n.
    values = count_vector_shapley([3, 5], lambda counts: counts.sum(axis=1).astype(float) ** 2)
    np.testing.assert_allclose(values, [64 / 8, 64 / 8])


@pytest.mark.parametrize("multiplicities", [[], [0, 2], [-1]])
def test_count_vector_sum_refuses_bad_multiplicities(multiplicities):
    with pytest.raises(ValueError, match="multiplicities"):
        count_vector_shapley(multiplicities, lambda counts: np.zeros(len(counts)))


def test_count_vector_sum_refuses_a_grid_it_cannot_hold():
    with pytest.raises(ValueError, match="count vectors exceed"):
        count_vector_shapley([1000, 1000, 1000], lambda counts: np.zeros(len(counts)))


def test_typed_run_values_rounds_with_partial_participation_exactly():
    typed = simulate_typed_run([2, 3], rounds=3, participation=0.7, seed=3, validation_size=200)
    result = estimate(typed.game, method="exact")
    np.testing.assert_allclose(result.per_round, typed.exact_per_round(), atol=1e-12)
    for t, members in enumerate(typed.round_members):
        absent = np.setdiff1d(np.arange(5), members)
        assert np.all(result.per_round[t, absent] == 0.0)
