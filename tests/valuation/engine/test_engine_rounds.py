"""Multi-round games: the budget follows each round's measured variance."""

import numpy as np

from valuation.engine import MultiRoundGame, UnanimityGame, estimate
from valuation.engine.typed import simulate_typed_round, simulate_typed_run

from .conftest import relative_error


class _Named:
    """A black-box round with named participants and its utility scaled to ``gain``."""

    def __init__(self, game, participants, gain):
        self.n_players, self.participants, self.game = game.n_players, participants, game
        ends = game.utility(np.array([[False] * game.n_players, [True] * game.n_players]))
        self.factor = gain / (ends[1] - ends[0])

    def utility(self, coalitions):
        return self.factor * self.game.utility(coalitions)


def test_a_noisier_round_gets_more_budget_than_an_equally_large_smooth_one():
    smooth = simulate_typed_round([15, 10, 5], seed=2, validation_size=500).game
    n = smooth.n_players
    ends = smooth.utility(np.array([[False] * n, [True] * n]))
    rough = _Named(UnanimityGame.random(n, max_order=3, n_terms=60, seed=1), smooth.participants, ends[1] - ends[0])
    result = estimate(MultiRoundGame(rounds=[smooth, rough]), method="auto", budget=6_000, seed=0)
    smooth_evaluations, rough_evaluations = result.metadata["round_evaluations"]
    assert result.evaluations <= 6_000
    # Both rounds move the utility by the same amount, so a |ΔU| split would be even.
    assert rough_evaluations > 2 * smooth_evaluations


def test_many_rounds_honour_the_total_budget_and_beat_an_even_split():
    typed = simulate_typed_run([25, 15], rounds=20, participation=0.8, seed=1, validation_size=400)
    exact = typed.exact_values()
    budget = 40_000
    result = estimate(typed.game, method="auto", budget=budget, seed=0)
    assert result.evaluations <= budget
    assert len(set(result.metadata["round_evaluations"])) > 5  # not an even split
    assert relative_error(result.values, exact) < 0.01
    np.testing.assert_allclose(result.per_round.sum(axis=0), result.values)


def test_an_absent_participant_costs_nothing_in_a_round():
    typed = simulate_typed_run([3, 2], rounds=4, participation=0.5, seed=5, validation_size=200)
    result = estimate(typed.game, method="auto", budget=200, seed=0)
    for t, members in enumerate(typed.round_members):
        absent = np.setdiff1d(np.arange(5), members)
        assert np.all(result.per_round[t, absent] == 0.0)
        # A round is a game of its own participants: at most 2^|present| coalitions.
        assert result.metadata["round_evaluations"][t] <= 2 ** members.size
