"""The FL-structure estimator (Taylor control variate), GTG-Shapley and simulated data."""

import numpy as np
import pytest

from valuation.engine import estimate
from valuation.engine.estimators.taylor import QuadraticSurrogate
from valuation.engine.simulate import simulate_consortium, simulate_training_run


@pytest.fixture(scope="module")
def log_loss_round(consortium, training_run):
    return training_run.round_game(1, consortium=consortium, metric="neg_log_loss")


@pytest.fixture(scope="module")
def accuracy_round(consortium, training_run):
    return training_run.round_game(1, consortium=consortium, metric="accuracy")


def test_auto_picks_the_taylor_estimator_for_fl_games_under_budget(log_loss_round):
    assert estimate(log_loss_round, budget=30).method == "taylor"
    assert estimate(log_loss_round, method="control_variate", budget=30).method == "taylor"


@pytest.mark.parametrize("metric", ["neg_log_loss", "accuracy", "f1"])
def test_analytic_expansion_matches_finite_differences(consortium, training_run, metric):
    game = training_run.round_game(1, consortium=consortium, metric=metric)
    analytic = QuadraticSurrogate.for_game(game)[0]
    numeric = QuadraticSurrogate.around_grand_coalition(game)
    np.testing.assert_allclose(analytic.gradient, numeric.gradient, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(analytic.hessian, numeric.hessian, rtol=1e-3, atol=1e-5 * np.abs(numeric.hessian).max())


@pytest.mark.parametrize("game_name", ["log_loss_round", "accuracy_round"])
def test_taylor_beats_kernel_shap_at_equal_budget(request, game_name, rel_error):
    game = request.getfixturevalue(game_name)
    exact = estimate(game, method="exact").values
    ours = np.median([rel_error(estimate(game, method="taylor", budget=20, seed=s).values, exact) for s in range(4)])
    theirs = np.median([rel_error(estimate(game, method="kernel", budget=20, seed=s).values, exact) for s in range(4)])
    assert ours < 0.5 * theirs


def test_taylor_is_deterministic_efficient_and_converges(log_loss_round, rel_error):
    exact = estimate(log_loss_round, method="exact").values
    first = estimate(log_loss_round, method="taylor", budget=24, seed=9)
    np.testing.assert_array_equal(first.values, estimate(log_loss_round, method="taylor", budget=24, seed=9).values)
    assert abs(first.values.sum() - first.total) < 1e-9
    assert rel_error(estimate(log_loss_round, method="taylor", budget=64, seed=9).values, exact) < 1e-9


def test_taylor_falls_back_to_finite_differences_for_auc(consortium, training_run, rel_error):
    game = training_run.round_game(1, consortium=consortium, metric="auc")
    result = estimate(game, method="taylor", budget=30, seed=0)
    assert "finite differences" in result.metadata["surrogate"]
    assert rel_error(result.values, estimate(game, method="exact").values) < 0.5


def test_taylor_refuses_black_box_games():
    from valuation.engine import AirportGame

    with pytest.raises(ValueError, match="FL game"):
        estimate(AirportGame([1.0, 2.0, 3.0, 4.0]), method="taylor", budget=12)


@pytest.mark.parametrize("metric", ["neg_log_loss", "accuracy"])
def test_flipped_label_factory_gets_the_lowest_value(metric):
    consortium = simulate_consortium(n_factories=8, seed=3, validation_size=1500)
    run = simulate_training_run(consortium, rounds=2, seed=3)
    game = run.round_game(1, consortium=consortium, metric=metric)
    for seed in range(3):
        values = estimate(game, method="taylor", budget=26, seed=seed).values
        assert int(np.argmin(values)) == 0  # factory 0 has flipped labels


def test_gtg_skips_rounds_that_barely_move_the_metric(consortium):
    run = simulate_training_run(consortium, rounds=3, seed=1)
    game = run.multi_round_game(consortium=consortium, metric="neg_log_loss")
    game.rounds[2] = _scaled(game.rounds[1], 1e-4)
    result = estimate(game, method="gtg", budget=150, seed=0)
    assert result.metadata["skipped_rounds"] == [2]
    assert abs(result.values.sum() - result.total) < 1e-9 and result.evaluations <= 150


def _scaled(game, factor):
    class Scaled:
        n_players = game.n_players
        participants = game.participants

        def utility(self, coalitions):
            return factor * game.utility(coalitions)

    return Scaled()


def test_multi_round_budget_is_split_and_respected(consortium, training_run):
    game = training_run.multi_round_game(consortium=consortium, metric="neg_log_loss")
    result = estimate(game, method="auto", budget=60, seed=0)
    assert result.evaluations <= 60 and result.per_round.shape == (2, 6)
    assert result.method == "taylor"
    np.testing.assert_allclose(result.per_round.sum(axis=0), result.values)


def test_multi_round_with_partial_participation_values_absent_players_at_zero():
    consortium = simulate_consortium(n_factories=6, seed=2, validation_size=400, rows_range=(100, 200))
    run = simulate_training_run(consortium, rounds=3, participation=0.6, seed=2)
    game = run.multi_round_game(consortium=consortium, metric="accuracy")
    result = estimate(game, method="exact")
    for t, names in enumerate(run.round_participants):
        absent = [i for i, p in enumerate(run.participants) if p not in names]
        assert np.all(result.per_round[t, absent] == 0.0)


def test_simulation_is_deterministic_for_a_seed_and_marks_faults():
    first = simulate_consortium(n_factories=4, seed=1, validation_size=100)
    again = simulate_consortium(n_factories=4, seed=1, validation_size=100)
    np.testing.assert_array_equal(first.X_validation, again.X_validation)
    assert [f.fault for f in first.factories] == ["flipped_labels", "noisy_sensors", None, None]
