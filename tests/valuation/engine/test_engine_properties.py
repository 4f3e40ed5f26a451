"""Property-based checks of the Shapley axioms on random games (hypothesis)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from valuation.engine import estimate


class _Table:
    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)
        self.n_players = int(np.log2(self.table.size))

    def utility(self, coalitions):
        return self.table[np.asarray(coalitions, dtype=np.int64) @ (1 << np.arange(self.n_players))]


tables = st.integers(min_value=1, max_value=6).flatmap(
    lambda n: st.lists(st.floats(-100, 100, allow_nan=False), min_size=2**n, max_size=2**n)
)


@settings(max_examples=40, deadline=None)
@given(tables, st.sampled_from(["exact", "permutation", "stratified", "tmc", "banzhaf", "loo"]), st.integers(0, 2**31))
def test_values_always_sum_to_grand_minus_empty(table, method, seed):
    game = _Table(table)
    budget = None if method == "exact" else max(2**game.n_players, 2)
    result = estimate(game, method=method, budget=budget, seed=seed)
    assert abs(result.values.sum() - (table[-1] - table[0])) <= 1e-9 * max(1.0, abs(table[-1] - table[0]))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 6), st.data())
def test_symmetric_players_get_equal_values_and_null_players_zero(n, data):
    # Utility depends only on how many of players 1..n-1 are present; player 0 is null.
    by_count = data.draw(st.lists(st.floats(-10, 10, allow_nan=False), min_size=n, max_size=n))
    keys = np.arange(2**n)
    counts = np.array([bin(k >> 1).count("1") for k in keys])
    game = _Table(np.array(by_count)[counts])
    values = estimate(game, method="exact").values
    assert abs(values[0]) < 1e-9
    assert np.ptp(values[1:]) < 1e-9


@settings(max_examples=25, deadline=None)
@given(st.integers(3, 6), st.integers(0, 1000))
def test_exact_is_additive_over_random_games(n, seed):
    rng = np.random.default_rng(seed)
    first, second = rng.normal(size=2**n), rng.normal(size=2**n)
    combined = estimate(_Table(first + second), method="exact").values
    separate = estimate(_Table(first), method="exact").values + estimate(_Table(second), method="exact").values
    np.testing.assert_allclose(combined, separate, atol=1e-10)
