"""Exact enumeration: closed forms, the Shapley axioms, each coalition evaluated once."""

import numpy as np
import pytest

from valuation.engine import AirportGame, GloveGame, UnanimityGame, WeightedVotingGame, estimate


def test_exact_matches_closed_form_airport_game():
    game = AirportGame([5.0, 1.0, 3.0, 8.0, 2.0, 2.0, 13.0, 4.0, 6.0, 7.0])
    result = estimate(game, method="exact")
    np.testing.assert_allclose(result.values, game.shapley_values(), atol=1e-12)
    assert result.method == "exact" and np.all(result.stderr == 0)


def test_exact_matches_closed_form_glove_game():
    game = GloveGame(n_left=4, n_right=7)
    np.testing.assert_allclose(estimate(game, method="exact").values, game.shapley_values(), atol=1e-12)


def test_exact_matches_unanimity_dividends_up_to_order_three():
    game = UnanimityGame.random(12, max_order=3, n_terms=25, seed=5)
    np.testing.assert_allclose(estimate(game, method="exact").values, game.shapley_values(), atol=1e-10)


def test_exact_matches_enumeration_on_weighted_voting_game(brute_force):
    game = WeightedVotingGame([4, 3, 2, 1, 1, 1, 1], quota=7)
    np.testing.assert_allclose(estimate(game, method="exact").values, brute_force(game), atol=1e-12)


def test_exact_evaluates_each_coalition_once(table_game):
    game = table_game(np.random.default_rng(0).normal(size=2**9))
    result = estimate(game, method="exact")
    assert result.evaluations == 2**9 and game.rows == 2**9


def test_exact_is_additive(table_game):
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=2**7), rng.normal(size=2**7)
    total = estimate(table_game(first + second), method="exact").values
    parts = estimate(table_game(first), method="exact").values + estimate(table_game(second), method="exact").values
    np.testing.assert_allclose(total, parts, atol=1e-12)


def test_exact_gives_identical_players_equal_values_and_null_player_zero():
    # Players 0 and 1 are interchangeable, player 4 never matters.
    game = UnanimityGame(5, {(0, 2): 1.0, (1, 2): 1.0, (0, 1, 3): 2.0, (2,): 0.5})
    values = estimate(game, method="exact").values
    assert values[0] == pytest.approx(values[1], abs=1e-12)
    assert values[4] == pytest.approx(0.0, abs=1e-12)


def test_exact_rejects_budget_below_two_to_the_n():
    with pytest.raises(ValueError, match="minimum"):
        estimate(AirportGame(np.arange(1.0, 9.0)), method="exact", budget=100)
