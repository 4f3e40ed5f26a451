"""Black-box games: what the ``stratified`` estimator (auto's choice) and ``kernel`` promise.

Exact at 2^n, never over budget, deterministic by seed, honest intervals, the working
model valued exactly, singles where pairs are redundant, and the accuracy gain over
shap's KernelExplainer on an order-3 unanimity game, measured here against shap itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from valuation.engine import UnanimityGame, WeightedVotingGame, estimate
from valuation.engine.cache import masks_from_keys
from valuation.engine.estimators.kernel import warm_up_shap
from valuation.engine.estimators.odd_model import OddFourierModel, _triples

UNANIMITY = UnanimityGame.random(10, max_order=3, n_terms=15, seed=4)
# Total weight 39, quota 20: exactly one of S and N∖S wins (a self-dual game).
SELF_DUAL_VOTING = WeightedVotingGame([1, 2, 2, 3, 4, 5, 6, 7, 9], quota=20)


class DistinctCounting:
    """A game that records every distinct coalition it is asked for."""

    def __init__(self, game) -> None:
        self.game, self.n_players, self.seen = game, game.n_players, set()

    def utility(self, coalitions: np.ndarray) -> np.ndarray:
        self.seen.update((np.asarray(coalitions, dtype=np.int64) @ (1 << np.arange(self.n_players))).tolist())
        return self.game.utility(coalitions)


def _relative(values, exact) -> float:
    return float(np.linalg.norm(values - exact) / np.linalg.norm(exact))


@pytest.mark.parametrize("game", [UNANIMITY, SELF_DUAL_VOTING], ids=["unanimity", "self-dual voting"])
def test_stratified_is_exact_once_the_budget_covers_every_coalition(game):
    exact = estimate(game, method="exact").values
    result = estimate(game, method="stratified", budget=2**game.n_players, seed=3)
    np.testing.assert_allclose(result.values, exact, atol=1e-10)
    assert np.all(result.stderr < 1e-9)


@pytest.mark.parametrize("game", [UNANIMITY, SELF_DUAL_VOTING], ids=["unanimity", "self-dual voting"])
@pytest.mark.parametrize("budget", [22, 60, 200, 700, 1023])
def test_stratified_never_asks_for_more_coalitions_than_the_budget(game, budget):
    budget = min(budget, 2**game.n_players - 1)
    counting = DistinctCounting(game)
    result = estimate(counting, method="stratified", budget=budget, seed=1)
    assert len(counting.seen) <= budget and result.evaluations <= budget
    assert abs(result.values.sum() - result.total) < 1e-9


def test_the_same_seed_gives_the_same_values_and_another_seed_other_values():
    first = estimate(SELF_DUAL_VOTING, method="stratified", budget=200, seed=5)
    again = estimate(SELF_DUAL_VOTING, method="stratified", budget=200, seed=5)
    other = estimate(SELF_DUAL_VOTING, method="stratified", budget=200, seed=6)
    np.testing.assert_array_equal(first.values, again.values)
    np.testing.assert_array_equal(first.stderr, again.stderr)
    assert not np.array_equal(first.values, other.values)


@pytest.mark.parametrize(
    "game, budget", [(UNANIMITY, 150), (SELF_DUAL_VOTING, 200)], ids=["unanimity", "self-dual voting"]
)
def test_95_percent_intervals_cover_the_exact_values_for_most_players_across_seeds(game, budget):
    exact = estimate(game, method="exact").values
    covered = []
    for seed in range(16):
        result = estimate(game, method="stratified", budget=budget, seed=seed)
        covered.append(np.abs(result.values - exact) <= 1.96 * result.stderr + 1e-9)
    assert np.mean(covered) >= 0.85


def test_budgets_too_small_for_a_pilot_return_the_working_models_values_with_honest_intervals():
    exact = estimate(UNANIMITY, method="exact").values
    covered = []
    for seed in range(16):
        scarce = estimate(UNANIMITY, method="stratified", budget=60, seed=seed)
        assert scarce.metadata["estimate"] == "regression"
        assert abs(scarce.values.sum() - scarce.total) < 1e-9
        covered.append(np.abs(scarce.values - exact) <= 1.96 * scarce.stderr + 1e-9)
    assert np.mean(covered) >= 0.85
    assert estimate(UNANIMITY, method="stratified", budget=300, seed=0).metadata["estimate"] == "regression-adjusted"


def test_pairs_give_way_to_single_coalitions_only_where_the_complement_is_redundant():
    voting = estimate(SELF_DUAL_VOTING, method="stratified", budget=200, seed=0)
    unanimity = estimate(UNANIMITY, method="stratified", budget=300, seed=0)
    assert voting.metadata["singles"] > 0
    assert unanimity.metadata["singles"] == 0


def test_stratified_is_at_least_twice_as_accurate_as_shap_kernel_on_an_order_three_unanimity_game():
    shap = warm_up_shap()
    exact = UNANIMITY.shapley_values()
    ours, theirs = [], []
    for seed in range(6):
        ours.append(_relative(estimate(UNANIMITY, method="stratified", budget=102, seed=seed).values, exact))
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            explainer = shap.KernelExplainer(lambda x: UNANIMITY.utility(x > 0.5), np.zeros((1, 10)))
            values = explainer.shap_values(np.ones((1, 10)), nsamples=100, l1_reg=False, silent=True)
        finally:
            np.random.set_state(state)
        theirs.append(_relative(np.asarray(values).reshape(-1), exact))
    assert np.median(ours) < 0.5 * np.median(theirs)


@pytest.mark.parametrize("budget", [40, 204])
def test_kernel_returns_shaps_own_values_for_the_same_seed_and_budget(budget):
    shap = warm_up_shap()
    for seed in (0, 7):
        ours = estimate(UNANIMITY, method="kernel", budget=budget, seed=seed)
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            explainer = shap.KernelExplainer(lambda x: UNANIMITY.utility(x > 0.5), np.zeros((1, 10)))
            values = explainer.shap_values(np.ones((1, 10)), nsamples=budget - 2, l1_reg=False, silent=True)
        finally:
            np.random.set_state(state)
        np.testing.assert_allclose(ours.values, np.asarray(values).reshape(-1), atol=1e-12)
        assert ours.evaluations == budget


def test_the_working_models_shapley_value_and_stratum_effects_match_enumeration():
    n = 7
    rng = np.random.default_rng(0)
    model = OddFourierModel(rng.normal(size=n), rng.normal(size=len(_triples(n))))
    coalitions = masks_from_keys(np.arange(2**n), n)
    table = model.predict(coalitions)
    sizes = coalitions.sum(axis=1)
    for s in range(1, n):
        members = coalitions[sizes == s]
        values = table[sizes == s]
        enumerated = [values[members[:, i]].mean() - values[~members[:, i]].mean() for i in range(n)]
        np.testing.assert_allclose(model.stratum_effect(s), enumerated, atol=1e-12)

    class Model:
        n_players = n

        def utility(self, masks):
            return model.predict(masks)

    np.testing.assert_allclose(model.shapley(), estimate(Model(), method="exact").values, atol=1e-12)
    assert model.total == pytest.approx(table[-1] - table[0], abs=1e-12)


def test_tolerance_stops_once_the_standard_errors_are_small_enough():
    game = UnanimityGame.random(14, max_order=3, n_terms=20, seed=2)
    result = estimate(game, method="stratified", tolerance=0.01, seed=0)
    assert result.stderr.max() <= 0.01 * abs(result.total)
    assert result.evaluations < 2**14


def test_many_players_fall_back_to_the_additive_model_and_stay_within_budget():
    game = UnanimityGame.random(60, max_order=3, n_terms=40, seed=1)
    counting = DistinctCounting(game)
    result = estimate(counting, method="stratified", budget=900, seed=0)
    assert result.metadata["cubic_terms"] == 0
    assert len(counting.seen) <= 900
    assert _relative(result.values, game.shapley_values()) < 0.2
