"""Second-order expansions of FL rounds: analytic, Gauss–Newton and finite differences."""

import numpy as np

from valuation.engine import estimate
from valuation.engine.expansions import gauss_newton_expansion
from valuation.engine.fl import GAUSS_NEWTON_PLAYERS
from valuation.engine.simulate import simulate_consortium
from valuation.engine.typed import ParticipantType, TypedRound, simulate_typed_round

from .conftest import relative_error


def test_gauss_newton_equals_the_analytic_expansion_of_a_linear_family():
    game = simulate_typed_round([12, 8, 5], seed=3, validation_size=400).game
    anchor, value, gradient, hessian = game.taylor_expansions()[0]
    _, gn_value, gn_gradient, gn_hessian = gauss_newton_expansion(
        anchor=anchor, outputs_of=game._outputs, smooth_of_outputs=_log_loss_of(game), rows_per_chunk=64
    )
    assert abs(gn_value - value) < 1e-12
    np.testing.assert_allclose(gn_gradient, gradient, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gn_hessian, hessian, rtol=1e-3, atol=1e-4 * np.abs(hessian).max())


def _log_loss_of(game):
    from valuation.engine.metrics import smooth_proxy

    return smooth_proxy("neg_log_loss", "binary", game.y, scale=1.0)


def _mlp_round(counts, seed=0):
    rng = np.random.default_rng(seed)
    consortium = simulate_consortium(n_factories=3, seed=seed, validation_size=600)
    weights = {"W1": rng.normal(0, 0.5, (8, 6)), "b1": np.zeros(6), "W2": rng.normal(0, 0.5, (6, 1)), "b2": np.zeros(1)}
    types = [
        ParticipantType(update={k: rng.normal(0, 0.3, v.shape) for k, v in weights.items()}, num_examples=float(e), count=c)
        for c, e in zip(counts, (400, 900, 1500))
    ]
    return TypedRound(family="mlp", task="binary", metric="neg_log_loss", global_weights=weights, types=types,
                      X=consortium.X_validation, y=consortium.y_validation)


def test_a_large_mlp_round_gets_a_gauss_newton_surrogate_that_beats_plain_sampling():
    typed = _mlp_round([25, 15, 10])
    assert typed.n_players > GAUSS_NEWTON_PLAYERS
    exact = typed.exact_values()
    result = estimate(typed.game, method="auto", budget=2_000, seed=1)
    assert result.method == "taylor" and "finite differences" not in result.metadata["surrogate"]
    plain = estimate(typed.game, method="stratified", budget=2_000, seed=1)
    assert relative_error(result.values, exact) < 0.5 * relative_error(plain.values, exact)


def test_a_small_mlp_round_keeps_full_finite_differences():
    typed = _mlp_round([3, 2, 2])
    result = estimate(typed.game, method="taylor", budget=60, seed=0)
    assert "finite differences" in result.metadata["surrogate"]
