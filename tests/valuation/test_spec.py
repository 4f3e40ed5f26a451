"""Parameter specs per model family (valuation/spec.py, pure)."""

import pytest

from valuation.spec import SpecError, class_count, feature_count, parse_training_spec


def spec(*arrays):
    return [{"name": name, "shape": list(shape), "dtype": "float32"} for name, shape in arrays]


MLP_BINARY = spec(("W1", (8, 16)), ("b1", (16,)), ("W2", (16, 1)), ("b2", (1,)))


@pytest.mark.parametrize(
    ("family", "task", "metric", "arrays", "d", "k"),
    [
        ("linear", "regression", "neg_rmse", spec(("coef", (5,)), ("intercept", ())), 5, None),
        ("logistic", "binary", "f1", spec(("intercept", ()), ("coef", (3,))), 3, None),
        ("softmax", "multiclass", "neg_log_loss", spec(("coef", (4, 3)), ("intercept", (3,))), 4, 3),
        ("mlp", "binary", "auc", MLP_BINARY, 8, None),
        ("mlp", "multiclass", "accuracy", spec(("W1", (8, 16)), ("b1", (16,)), ("W2", (16, 5)), ("b2", (5,))), 8, 5),
    ],
)
def test_valid_specs_are_accepted_in_canonical_order(family, task, metric, arrays, d, k):
    parsed = parse_training_spec(model_family=family, task=task, metric=metric, parameter_spec=arrays)
    assert feature_count(family, parsed) == d
    assert class_count(family, task, parsed) == k
    assert [a.name for a in parsed][0] in ("coef", "W1")


@pytest.mark.parametrize(
    ("family", "task", "metric", "arrays", "message"),
    [
        ("mlp", "binary", "auc", spec(("W1", (8, 16)), ("b1", (15,)), ("W2", (16, 1)), ("b2", (1,))),
         "dimension h is 15 but other arrays say 16"),
        ("mlp", "binary", "auc", spec(("W1", (8, 16)), ("b1", (16,)), ("W2", (16, 2)), ("b2", (2,))), "k = 1"),
        ("mlp", "multiclass", "accuracy", spec(("W1", (8, 4)), ("b1", (4,)), ("W2", (4, 1)), ("b2", (1,))), "k >= 2"),
        ("mlp", "regression", "auc", MLP_BINARY, "does not apply to task regression"),
        ("linear", "regression", "neg_rmse", spec(("coef", (5,)), ("coef", (5,))), "twice"),
        ("linear", "regression", "neg_rmse", spec(("coef", (0,)), ("intercept", ())), "between 1 and"),
        ("linear", "regression", "neg_rmse", [{"name": "coef", "shape": [5]}], "exactly name, shape and dtype"),
        ("linear", "regression", "neg_rmse", [], "non-empty list"),
    ],
)
def test_invalid_specs_say_what_is_wrong(family, task, metric, arrays, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_training_spec(model_family=family, task=task, metric=metric, parameter_spec=arrays)
