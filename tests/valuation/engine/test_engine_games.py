"""Reference games: their closed forms agree with the definition (brute force)."""

import numpy as np
import pytest

from valuation.engine import AirportGame, GloveGame, UnanimityGame, WeightedVotingGame


def test_airport_closed_form_matches_definition(brute_force):
    game = AirportGame([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    np.testing.assert_allclose(game.shapley_values(), brute_force(game), atol=1e-12)


@pytest.mark.parametrize("n_left,n_right", [(3, 3), (1, 4), (2, 5)])
def test_glove_closed_form_matches_definition(brute_force, n_left, n_right):
    game = GloveGame(n_left=n_left, n_right=n_right)
    np.testing.assert_allclose(game.shapley_values(), brute_force(game), atol=1e-12)


def test_glove_with_one_left_glove_matches_textbook_values():
    values = GloveGame(n_left=1, n_right=3).shapley_values()
    np.testing.assert_allclose(values, [3 / 4, 1 / 12, 1 / 12, 1 / 12])


def test_unanimity_closed_form_matches_definition(brute_force):
    game = UnanimityGame(6, {(0,): 1.0, (1, 2): 2.0, (0, 3, 5): -1.5, (2, 4): 0.5})
    np.testing.assert_allclose(game.shapley_values(), brute_force(game), atol=1e-12)


def test_random_unanimity_game_has_interactions_up_to_order_three():
    game = UnanimityGame.random(10, max_order=3, n_terms=12, seed=1)
    orders = {len(members) for members in game.coalitions}
    assert max(orders) == 3 and 1 in orders


def test_unanimity_rejects_out_of_range_players():
    with pytest.raises(ValueError):
        UnanimityGame(3, {(0, 5): 1.0})


def test_weighted_voting_utility_is_one_exactly_at_quota():
    game = WeightedVotingGame([2, 3, 5], quota=5)
    coalitions = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=bool)
    np.testing.assert_array_equal(game.utility(coalitions), [1.0, 0.0, 1.0])
