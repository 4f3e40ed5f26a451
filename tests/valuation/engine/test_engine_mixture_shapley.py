"""Shapley values of quadratic functions of the FedAvg mixture, by quadrature."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valuation.engine.cache import masks_from_keys
from valuation.engine.estimators.exact import shapley_from_table
from valuation.engine.estimators.mixture_shapley import MixtureQuadratic, mixture_quadratic_shapley
from valuation.engine.typed import count_vector_shapley, simulate_typed_round


def _random_quadratic(n, seed, rank=3, spread=20.0):
    rng = np.random.default_rng(seed)
    examples = rng.uniform(1.0, spread, n)
    factors = rng.normal(size=(n, rank))
    hessian = factors @ np.diag(rng.normal(size=rank)) @ factors.T
    anchor = examples / examples.sum()
    return MixtureQuadratic.from_expansion(examples, anchor, rng.normal(), rng.normal(size=n), hessian)


def _mixtures(masks, examples):
    weighted = masks * examples
    totals = weighted.sum(axis=1, keepdims=True)
    return np.divide(weighted, totals, out=np.zeros_like(weighted), where=totals > 0)


def _enumerated(quadratic):
    n = quadratic.examples.size
    masks = masks_from_keys(np.arange(2**n), n)
    return shapley_from_table(quadratic.of_mixtures(_mixtures(masks, quadratic.examples)), n)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 11), seed=st.integers(0, 2**32 - 1), rank=st.integers(0, 4), spread=st.sampled_from([1.0, 3.0, 1e3]))
def test_quadrature_equals_enumeration(n, seed, rank, spread):
    quadratic = _random_quadratic(n, seed, rank=min(rank, n), spread=spread)
    values, error = mixture_quadratic_shapley(quadratic)
    exact = _enumerated(quadratic)
    scale = max(1.0, float(np.abs(exact).max()))
    np.testing.assert_allclose(values, exact, rtol=0, atol=1e-10 * scale)
    assert np.all(error <= 1e-7 * scale)


def test_expansion_around_the_grand_mixture_keeps_its_values():
    rng = np.random.default_rng(1)
    n = 6
    examples = rng.uniform(1, 5, n)
    hessian = rng.normal(size=(n, n))
    hessian = hessian + hessian.T
    anchor, gradient = examples / examples.sum(), rng.normal(size=n)
    quadratic = MixtureQuadratic.from_expansion(examples, anchor, 0.7, gradient, hessian)
    mixtures = _mixtures(masks_from_keys(np.arange(2**n), n), examples)
    offsets = mixtures - anchor
    direct = 0.7 + offsets @ gradient + 0.5 * np.einsum("ij,ij->i", offsets @ hessian, offsets)
    np.testing.assert_allclose(quadratic.of_mixtures(mixtures), direct, atol=1e-12)


def test_quadrature_values_a_large_typed_surrogate_exactly():
    typed = simulate_typed_round([40, 25, 15], seed=2, validation_size=400)
    game = typed.game
    anchor, value, gradient, hessian = game.taylor_expansions()[0]
    quadratic = MixtureQuadratic.from_expansion(game.num_examples, anchor, value, gradient, hessian)
    starts = np.concatenate([[0], np.cumsum(typed.multiplicities)[:-1]])

    def surrogate_of_counts(counts):
        masks = np.zeros((counts.shape[0], game.n_players), dtype=bool)
        for t, (start, size) in enumerate(zip(starts, typed.multiplicities)):
            masks[:, start : start + size] = np.arange(size)[None, :] < counts[:, t : t + 1]
        return quadratic.of_mixtures(game.mixture_weights(masks))

    reference = count_vector_shapley(typed.multiplicities, surrogate_of_counts)[typed.player_types]
    values, _ = mixture_quadratic_shapley(quadratic)
    assert quadratic.eigenvalues.size <= 3  # one direction per type
    np.testing.assert_allclose(values, reference, rtol=0, atol=1e-11 * np.abs(reference).max())


@pytest.mark.parametrize("n", [1, 2])
def test_quadrature_handles_the_smallest_games(n):
    quadratic = _random_quadratic(n, seed=5, rank=1)
    np.testing.assert_allclose(mixture_quadratic_shapley(quadratic)[0], _enumerated(quadratic), atol=1e-12)


def test_value_at_coalitions_equals_value_at_their_mixtures():
    quadratic = _random_quadratic(30, seed=8, rank=4)
    masks = np.random.default_rng(2).random((500, 30)) < 0.4
    masks[0] = False  # the empty coalition: p = 0
    np.testing.assert_allclose(
        quadratic.of_coalitions(masks, chunk=64), quadratic.of_mixtures(_mixtures(masks, quadratic.examples)), rtol=0, atol=1e-12
    )
