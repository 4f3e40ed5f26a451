"""``estimate``: the contract every method shares (efficiency, determinism, budget,
distinct counting, tolerance, cache) and the errors it raises."""

import numpy as np
import pytest

from valuation.engine import (
    AirportGame,
    InMemoryCoalitionCache,
    UnanimityGame,
    ValuationResult,
    estimate,
)

SAMPLING_METHODS = ["permutation", "tmc", "gtg", "kernel", "stratified", "banzhaf", "loo"]
ALL_METHODS = ["exact", "auto", *SAMPLING_METHODS]


@pytest.fixture(scope="module")
def game():
    return UnanimityGame.random(9, max_order=3, n_terms=12, seed=11)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_every_method_is_efficient(game, method):
    result = estimate(game, method=method, budget=120 if method not in ("exact", "auto") else None, seed=3)
    assert isinstance(result, ValuationResult)
    assert abs(result.values.sum() - (result.utility_grand - result.utility_empty)) < 1e-9
    assert result.stderr.shape == (game.n_players,) and np.all(result.stderr >= 0)


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_every_method_is_deterministic_for_a_seed(game, method):
    first = estimate(game, method=method, budget=150, seed=42)
    again = estimate(game, method=method, budget=150, seed=42)
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_array_equal(first.stderr, again.stderr)
    assert first.evaluations == again.evaluations and first.seed == 42 and first.method == method


@pytest.mark.parametrize("method", SAMPLING_METHODS)
def test_budget_is_a_hard_ceiling_on_distinct_evaluations(table_game, method):
    game = table_game(np.random.default_rng(2).normal(size=2**10))
    result = estimate(game, method=method, budget=77, seed=1)
    assert result.evaluations <= 77
    assert game.rows == result.metadata["computed_evaluations"] == result.evaluations  # nothing evaluated twice


def test_permutation_sampling_counts_the_empty_coalition_once(table_game):
    game = table_game(np.arange(2.0**6))
    result = estimate(game, method="permutation", budget=64, seed=0)
    assert game.rows == result.evaluations <= 64


def test_auto_is_exact_for_small_games_without_budget(game):
    result = estimate(game)
    assert result.method == "exact" and result.metadata["requested_method"] == "auto"
    assert result.evaluations == 2**game.n_players


def test_auto_is_exact_when_budget_covers_every_coalition(game):
    assert estimate(game, budget=2**game.n_players).method == "exact"


def test_auto_uses_stratified_for_black_box_games_under_budget(game):
    assert estimate(game, budget=100).method == "stratified"


def test_tolerance_stops_sampling_early():
    game = AirportGame(np.linspace(1.0, 3.0, 16))
    loose = estimate(game, method="stratified", tolerance=0.05, seed=0)
    tight = estimate(game, method="stratified", tolerance=0.002, seed=0)
    assert loose.evaluations < tight.evaluations
    assert loose.stderr.max() / abs(loose.total) < 0.05 or loose.evaluations == 2**16


def test_tolerance_within_a_budget_stops_at_the_budget():
    game = UnanimityGame.random(14, max_order=3, n_terms=20, seed=2)
    result = estimate(game, method="permutation", tolerance=1e-9, budget=300, seed=0)
    assert result.evaluations <= 300


def test_external_cache_is_used_and_does_not_change_results(game):
    cache = InMemoryCoalitionCache()
    cold = estimate(game, method="stratified", budget=90, seed=5, cache=cache)
    warm = estimate(game, method="stratified", budget=90, seed=5, cache=cache)
    np.testing.assert_array_equal(cold.values, warm.values)
    assert cold.metadata["computed_evaluations"] == cold.evaluations == len(cache)
    assert warm.metadata["computed_evaluations"] == 0 and warm.evaluations == cold.evaluations


def test_a_read_only_cache_protocol_object_is_accepted(game):
    class ReadOnlyCache:
        def __init__(self):
            self.asked = 0

        def get_many(self, keys):
            self.asked += len(list(keys))
            return {}

        def put_many(self, values):
            pass

    cache = ReadOnlyCache()
    result = estimate(game, method="permutation", budget=60, cache=cache)
    assert cache.asked == result.evaluations


def test_single_player_gets_the_whole_surplus():
    result = estimate(AirportGame([4.0]), method="permutation", budget=2)
    np.testing.assert_allclose(result.values, [4.0])


def test_result_reports_confidence_interval_and_json_summary(game):
    result = estimate(game, method="permutation", budget=200, seed=1)
    assert np.all(result.ci_low <= result.values) and np.all(result.values <= result.ci_high)
    summary = result.as_dict()
    assert summary["method"] == "permutation" and summary["seed"] == 1 and len(summary["values"]) == 9


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"method": "magic"}, "unknown method"),
        ({"budget": 0}, "budget"),
        ({"budget": 2.5}, "budget"),
        ({"tolerance": -1.0}, "tolerance"),
        ({"seed": -3}, "seed"),
        ({"method": "permutation", "budget": 5}, "minimum"),
        ({"method": "stratified", "budget": 10}, "minimum"),
        ({"method": "loo", "budget": 4}, "minimum"),
    ],
)
def test_bad_requests_raise_value_error(game, kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate(game, **kwargs)


class _Game:
    def __init__(self, n_players, utility):
        self.n_players = n_players
        self._utility = utility

    def utility(self, coalitions):
        return self._utility(coalitions)


@pytest.mark.parametrize(
    "bad_game,message",
    [
        (_Game(0, lambda c: np.zeros(len(c))), "at least one player"),
        (_Game(3, lambda c: np.zeros((len(c), 2))), "shape"),
        (_Game(3, lambda c: np.full(len(c), np.nan)), "non-finite"),
        (_Game(3, lambda c: np.zeros(len(c) + 1)), "shape"),
    ],
)
def test_bad_games_raise_value_error(bad_game, message):
    with pytest.raises(ValueError, match=message):
        estimate(bad_game, method="exact")


def test_object_without_utility_is_not_a_game():
    class NotAGame:
        n_players = 3

    with pytest.raises(ValueError, match="utility"):
        estimate(NotAGame())


def test_kernel_restores_numpys_global_generator(game):
    np.random.seed(123)
    expected = np.random.get_state()[1].copy()
    estimate(game, method="kernel", budget=80, seed=4)
    np.testing.assert_array_equal(np.random.get_state()[1], expected)


def test_games_with_more_than_62_players_use_wide_bitmask_keys():
    weights = np.linspace(-1.0, 2.0, 70)

    class Additive:
        n_players = 70

        def utility(self, coalitions):
            return coalitions.astype(float) @ weights

    cache = InMemoryCoalitionCache()
    result = estimate(Additive(), method="permutation", budget=400, seed=0, cache=cache)
    np.testing.assert_allclose(result.values, weights, atol=1e-12)  # every order gives the truth
    assert max(cache._values) >= 2**69 and result.evaluations == len(cache) <= 400
