"""FL round games: FedAvg reconstruction, aggregation paths, chunking, validation."""

import numpy as np
import pytest

from valuation.engine import (
    FLRoundGame,
    InMemoryCoalitionCache,
    MultiRoundGame,
    estimate,
    get_model_family,
    register_model_family,
)


def _logistic_round(seed=0, n=5, m=400, d=6, metric="neg_log_loss", **kwargs):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(m, d))
    y = (X @ rng.normal(size=d) + rng.normal(size=m) > 0).astype(float)
    weights = {"coef": rng.normal(scale=0.3, size=d), "intercept": np.array(0.1)}
    updates = [{"coef": rng.normal(scale=0.5, size=d), "intercept": np.array(rng.normal(scale=0.1))} for _ in range(n)]
    counts = rng.integers(50, 500, size=n)
    game = FLRoundGame(family="logistic", task="binary", metric=metric, global_weights=weights,
                       updates=updates, num_examples=counts, X=X, y=y, **kwargs)
    return game, weights, updates, counts, X, y


def _naive_log_loss(coef, intercept, X, y):
    p = 1 / (1 + np.exp(-(X @ coef + intercept)))
    return -np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def test_grand_coalition_utility_equals_metric_of_naive_fedavg_model():
    game, weights, updates, counts, X, y = _logistic_round()
    share = counts / counts.sum()
    coef = weights["coef"] + sum(s * u["coef"] for s, u in zip(share, updates))
    intercept = weights["intercept"] + sum(s * u["intercept"] for s, u in zip(share, updates))
    grand = game.utility(np.ones((1, 5), dtype=bool))[0]
    assert grand == pytest.approx(_naive_log_loss(coef, intercept, X, y), abs=1e-12)


def test_empty_coalition_utility_is_metric_of_global_weights():
    game, weights, _, _, X, y = _logistic_round()
    assert game.utility(np.zeros((1, 5), dtype=bool))[0] == pytest.approx(_naive_log_loss(weights["coef"], weights["intercept"], X, y), abs=1e-12)


def test_output_space_aggregation_equals_parameter_space_aggregation(register_family):
    game, weights, updates, counts, X, y = _logistic_round(metric="accuracy")

    class ParameterSpaceLogistic:  # the same model, but the engine may not exploit linearity
        linear_in_weights = False
        tasks = ("binary",)
        parameter_layout = get_model_family("logistic").parameter_layout
        predict = get_model_family("logistic").predict

    register_family("test-parameter-space-logistic", ParameterSpaceLogistic())
    other = FLRoundGame(family="test-parameter-space-logistic", task="binary", metric="accuracy", global_weights=weights,
                        updates=updates, num_examples=counts, X=X, y=y)
    coalitions = np.random.default_rng(1).random((64, 5)) < 0.5
    np.testing.assert_allclose(game.utility(coalitions), other.utility(coalitions), atol=1e-12)


def test_chunking_with_tiny_memory_bound_gives_identical_utilities():
    game, *_ = _logistic_round()
    tiny, *_ = _logistic_round(memory_limit_bytes=1)
    coalitions = np.random.default_rng(2).random((300, 5)) < 0.5
    np.testing.assert_array_equal(game.utility(coalitions), tiny.utility(coalitions))
    assert tiny._rows_per_chunk() == 1


@pytest.mark.parametrize("metric", ["neg_log_loss", "accuracy", "auc", "f1"])
def test_binary_metrics_match_their_definitions(metric):
    game, weights, updates, counts, X, y = _logistic_round(metric=metric)
    scores = X @ weights["coef"] + weights["intercept"]
    predicted = scores > 0
    positives, negatives = scores[y == 1], scores[y == 0]
    expected = {
        "neg_log_loss": _naive_log_loss(weights["coef"], weights["intercept"], X, y),
        "accuracy": np.mean(predicted == (y == 1)),
        "auc": np.mean((positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives[None, :])),
        "f1": 2 * np.sum(predicted & (y == 1)) / (np.sum(predicted) + np.sum(y == 1)),
    }[metric]
    assert game.utility(np.zeros((1, 5), dtype=bool))[0] == pytest.approx(expected, abs=1e-12)


def test_softmax_round_matches_naive_multiclass_log_loss_and_macro_f1():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(200, 4)), rng.integers(0, 3, size=200).astype(float)
    weights = {"coef": rng.normal(size=(4, 3)), "intercept": rng.normal(size=3)}
    updates = [{"coef": rng.normal(size=(4, 3)), "intercept": rng.normal(size=3)} for _ in range(3)]
    common = dict(family="softmax", task="multiclass", global_weights=weights, updates=updates, num_examples=[1, 2, 3], X=X, y=y)
    logits = X @ weights["coef"] + weights["intercept"]
    log_probabilities = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    empty = np.zeros((1, 3), dtype=bool)
    loss_game = FLRoundGame(metric="neg_log_loss", **common)
    assert loss_game.utility(empty)[0] == pytest.approx(np.mean(log_probabilities[np.arange(200), y.astype(int)]), abs=1e-12)
    predicted = logits.argmax(axis=1)
    f1s = [2 * np.sum((predicted == c) & (y == c)) / (np.sum(predicted == c) + np.sum(y == c)) for c in range(3)]
    assert FLRoundGame(metric="f1", **common).utility(empty)[0] == pytest.approx(np.mean(f1s), abs=1e-12)


def test_mlp_round_matches_naive_forward_pass():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(150, 5)), rng.normal(size=150)
    shapes = {"W1": (5, 8), "b1": (8,), "W2": (8, 1), "b2": (1,)}
    weights = {k: rng.normal(size=s) for k, s in shapes.items()}
    updates = [{k: rng.normal(scale=0.2, size=s) for k, s in shapes.items()} for _ in range(4)]
    game = FLRoundGame(family="mlp", task="regression", metric="neg_rmse", global_weights=weights, updates=updates,
                       num_examples=[10, 20, 30, 40], X=X, y=y)
    coalition = np.array([[True, False, True, False]])
    share = np.array([10, 0, 30, 0]) / 40
    merged = {k: weights[k] + sum(s * u[k] for s, u in zip(share, updates)) for k in shapes}
    prediction = (np.maximum(X @ merged["W1"] + merged["b1"], 0) @ merged["W2"] + merged["b2"])[:, 0]
    assert game.utility(coalition)[0] == pytest.approx(-np.sqrt(np.mean((prediction - y) ** 2)), abs=1e-12)


def test_registered_evaluator_plugs_in_another_model_family(register_family):
    class NoIntercept:  # X @ coef, aggregated in parameter space
        linear_in_weights = False
        tasks = ("regression",)
        parameter_layout = {"coef": ("d",)}

        def predict(self, params, X):
            return (params["coef"] @ X.T)[:, :, None]

    register_family("test-no-intercept", NoIntercept())
    game = FLRoundGame(family="test-no-intercept", task="regression", metric="neg_rmse", global_weights={"coef": [0.0]},
                       updates=[{"coef": [1.0]}, {"coef": [3.0]}], num_examples=[1, 1], X=np.ones((4, 1)), y=np.full(4, 2.0))
    np.testing.assert_allclose(game.utility(np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)), [0.0, -1.0, -2.0])


def test_registering_a_family_twice_needs_replace():
    with pytest.raises(ValueError, match="already registered"):
        register_model_family("logistic", get_model_family("logistic"))


@pytest.mark.parametrize(
    "change,message",
    [
        ({"family": "forest"}, "unknown model family"),
        ({"metric": "r2"}, "unknown metric"),
        ({"metric": "neg_rmse"}, "not defined for task"),
        ({"task": "regression"}, "does not support task"),
        ({"num_examples": [1, 2]}, "example counts"),
        ({"num_examples": [1, 0, 3]}, "positive"),
        ({"X": np.full((10, 3), np.nan)}, "non-finite"),
        ({"y": np.zeros(9)}, "rows"),
        ({"y": np.full(10, 2.0)}, "0 or 1"),
        ({"global_weights": {"coef": np.zeros(4), "intercept": 0.0}}, "shape"),
        ({"global_weights": {"coef": np.zeros(3)}}, "expected"),
        ({"updates": [{"coef": np.zeros(3), "intercept": np.inf}] * 3}, "non-finite"),
    ],
)
def test_invalid_round_inputs_raise_clear_value_errors(change, message):
    arguments = dict(family="logistic", task="binary", metric="accuracy", global_weights={"coef": np.zeros(3), "intercept": 0.0},
                     updates=[{"coef": np.ones(3), "intercept": 0.0}] * 3, num_examples=[1, 2, 3], X=np.ones((10, 3)),
                     y=np.array([0, 1] * 5, dtype=float))
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        FLRoundGame(**arguments)


def test_absent_participant_is_null_in_that_round_and_rounds_add_up():
    first, *_ = _logistic_round(seed=5, n=3)
    second, *_ = _logistic_round(seed=6, n=2)
    first.participants, second.participants = ["a", "b", "c"], ["a", "c"]
    game = MultiRoundGame(rounds=[first, second])
    result = estimate(game, method="exact")
    assert game.players == ["a", "b", "c"] and result.per_round[1, 1] == 0.0
    np.testing.assert_allclose(result.per_round[0], estimate(first, method="exact").values, atol=1e-12)
    np.testing.assert_allclose(result.per_round[1, [0, 2]], estimate(second, method="exact").values, atol=1e-12)
    np.testing.assert_allclose(result.values, estimate(_as_black_box(game), method="exact").values, atol=1e-12)
    assert result.evaluations == 2**3 + 2**2


def _as_black_box(game):
    class BlackBox:
        n_players = game.n_players
        utility = staticmethod(game.utility)

    return BlackBox()


def test_coalition_utilities_do_not_depend_on_batch_or_enumeration_route():
    game, *_ = _logistic_round(n=7)
    keys = np.arange(2**7)
    masks = ((keys[:, None] >> np.arange(7)) & 1).astype(bool)
    together = game.utility(masks)
    alone = np.array([game.utility(mask[None])[0] for mask in masks])
    blocks = np.concatenate([game.utility_block(high, 3) for high in range(0, 2**7, 8)])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(together, blocks)


def test_exact_through_blocks_equals_exact_through_plain_utility():
    game, *_ = _logistic_round(n=8, metric="neg_log_loss")
    plain = estimate(_as_black_box(game), method="exact")
    fast = estimate(game, method="exact")
    np.testing.assert_array_equal(fast.values, plain.values)


def test_multi_round_cache_keys_carry_the_round_index():
    first, *_ = _logistic_round(seed=8, n=3)
    second, *_ = _logistic_round(seed=9, n=3)
    cache = InMemoryCoalitionCache()
    result = estimate(MultiRoundGame(rounds=[first, second]), method="exact", cache=cache)
    keys = sorted(cache._values)
    assert keys == list(range(8)) + [8 + k for k in range(8)] and result.evaluations == 16
