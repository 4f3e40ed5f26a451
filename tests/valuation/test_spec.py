"""Parameter specs per model family (valuation/spec.py), read from the engine's registry."""

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from valuation.engine import model_family_names, register_model_family, unregister_model_family
from valuation.serializers import TrainingRunInput
from valuation.spec import DTYPES, MAX_ARRAYS, MAX_NDIM, class_count, feature_count, parse_training_spec


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
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_training_spec(model_family=family, task=task, metric=metric, parameter_spec=arrays)


@pytest.mark.parametrize(
    ("family", "task", "metric", "arrays", "message"),
    [
        ("forest", "binary", "auc", MLP_BINARY, 'model_family must be one of linear, logistic, softmax, mlp; got "forest".'),
        ("mlp", "ranking", "auc", MLP_BINARY, 'task must be one of regression, binary, multiclass; got "ranking".'),
        ("mlp", "binary", "r2", MLP_BINARY,
         'metric must be one of neg_log_loss, accuracy, auc, f1, neg_rmse; got "r2".'),
        ("linear", "binary", "auc", MLP_BINARY, "model_family linear supports task regression, not binary."),
        ("mlp", "multiclass", "auc", MLP_BINARY,
         "metric auc does not apply to task multiclass; use one of neg_log_loss, accuracy, f1."),
        ("mlp", "binary", "auc", spec(("W1", (8, 16)), ("b1", (16,)), ("W2", (16, 2)), ("b2", (2,))),
         "task binary needs k = 1 output; the spec has k = 2."),
        ("mlp", "multiclass", "f1", MLP_BINARY, "task multiclass needs k >= 2 classes; the spec has k = 1."),
        ("softmax", "multiclass", "f1", spec(("coef", (4,)), ("intercept", (3,))),
         "softmax array 'coef' must have shape (d, k); got [4]."),
        ("logistic", "binary", "f1", spec(("coef", (4,)), ("bias", ())),
         "model_family logistic needs exactly the arrays coef, intercept; got coef, bias."),
    ],
)
def test_messages_are_exact_and_errors_concern_the_whole_body(family, task, metric, arrays, message):
    with pytest.raises(InvalidInput) as raised:
        parse_training_spec(model_family=family, task=task, metric=metric, parameter_spec=arrays)
    assert raised.value.message == message
    assert raised.value.field is None and raised.value.status_code == 400


# -- whatever JSON a client sends is refused with a message, never echoed as Python ----------

# What a Python representation of client data would put in a message.
PYTHON_REPR_MARKS = ("{'", "['", "[{", "True", "False", "None", "<class", "object at 0x", "Error(", "b'", "b\"")


def assert_no_python_repr(message: str) -> None:
    for mark in PYTHON_REPR_MARKS:
        assert mark not in message, (mark, message)


def refusal(**body) -> str:
    declaration = {"model_family": "mlp", "task": "binary", "metric": "auc", "parameter_spec": MLP_BINARY} | body
    with pytest.raises(InvalidInput) as raised:
        parse_training_spec(**declaration)
    assert_no_python_repr(raised.value.message)
    return raised.value.message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"family": "mlp"}, "a JSON object"),
        (["mlp"], "a JSON array"),
        (True, "true"),
        (None, "null"),
        (3, "3"),
        (2.5, "2.5"),
        (10**200, "a very large integer"),
        ("mlp\n\u202e", '"mlp\\n\\u202e"'),
        ("f" * 1000, '"' + "f" * 64 + '…"'),
        (b"mlp", "a value that is not JSON"),
    ],
)
def test_client_values_are_shown_as_json_not_as_python(value, shown):
    assert refusal(model_family=value).endswith(f"; got {shown}.")
    assert refusal(task=value).endswith(f"; got {shown}.")
    assert refusal(metric=value).endswith(f"; got {shown}.")
    arrays = [dict(array) for array in MLP_BINARY]
    arrays[1]["dtype"] = value
    assert refusal(parameter_spec=arrays) == (
        f"parameter_spec[1] (b1): dtype must be one of float32, float64; got {shown}."
    )


def test_client_names_are_quoted_escaped_and_truncated():
    odd = "it's\\\x07"
    message = refusal(parameter_spec=[{"name": odd, "shape": [1], "dtype": "float32"}] * 2)
    assert message == "parameter_spec names array 'it\\'s\\\\\\x07' twice."
    long_name = "w" * 10_000
    message = refusal(parameter_spec=[{"name": long_name, "shape": [0], "dtype": "float32"}])
    assert message == f"parameter_spec[0] ('{'w' * 64}…'): every dimension must be between 1 and 1000000."
    names = [f"a{i}" for i in range(20)]
    message = refusal(parameter_spec=[{"name": name, "shape": [1], "dtype": "float32"} for name in names])
    assert message.endswith("got a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 and 10 more.")


def test_a_spec_with_more_arrays_than_the_maximum_is_refused_before_reading_them():
    huge = [{"name": "W1", "shape": [1] * 1_000_000, "dtype": "float32"}] * 1_000_000
    started = time.perf_counter()
    message = refusal(parameter_spec=huge)
    assert time.perf_counter() - started < 0.5
    assert message == f"parameter_spec has 1000000 arrays; at most {MAX_ARRAYS} are accepted."
    accepted = [{"name": "W1", "shape": [1], "dtype": "float32"}] * MAX_ARRAYS
    assert "twice" in refusal(parameter_spec=accepted)  # the bound itself is allowed through


def test_an_array_with_more_dimensions_than_the_maximum_is_refused_before_reading_them():
    started = time.perf_counter()
    message = refusal(parameter_spec=[{"name": "W1", "shape": [1] * 1_000_000, "dtype": "float32"}])
    assert time.perf_counter() - started < 0.5
    assert message == f"parameter_spec[0] (W1): shape has 1000000 dimensions; at most {MAX_NDIM} are accepted."
    arrays = [dict(array) for array in MLP_BINARY]
    arrays[0]["shape"] = [2] * MAX_NDIM  # the bound itself is allowed through, to the layout check
    assert refusal(parameter_spec=arrays) == "mlp array 'W1' must have shape (d, h); got [2, 2, 2, 2, 2, 2, 2, 2]."


def deeply_nested(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("field", ["model_family", "task", "metric", "parameter_spec", "name", "shape", "dtype"])
def test_deeply_nested_values_are_refused_without_recursing(field):
    nested = deeply_nested(100_000)
    if field in ("name", "shape", "dtype"):
        arrays = [dict(array) for array in MLP_BINARY]
        arrays[0][field] = nested
        message = refusal(parameter_spec=arrays)
    elif field == "parameter_spec":
        message = refusal(parameter_spec=nested)
    else:
        message = refusal(**{field: nested})
    assert len(message) < 200


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=30,
)
ARRAY_ENTRY = st.fixed_dictionaries(
    {"name": st.sampled_from(["W1", "b1", "W2", "b2"]) | JSON,
     "shape": st.lists(st.integers(-2, 20), max_size=4) | JSON,
     "dtype": st.sampled_from(["float32", "float64"]) | JSON},
)


@hypothesis_settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(
    model_family=st.sampled_from(["mlp", "linear", "softmax"]) | JSON,
    task=st.sampled_from(["binary", "multiclass", "regression"]) | JSON,
    metric=st.sampled_from(["auc", "f1", "accuracy"]) | JSON,
    parameter_spec=st.lists(ARRAY_ENTRY | JSON, max_size=6) | JSON,
)
def test_any_json_declaration_is_parsed_or_refused_with_a_plain_message(model_family, task, metric, parameter_spec):
    try:
        parsed = parse_training_spec(model_family=model_family, task=task, metric=metric, parameter_spec=parameter_spec)
    except InvalidInput as refused:
        assert_no_python_repr(refused.message)
        assert refused.__cause__ is None and len(refused.message) < 1000
    else:
        assert [array.dtype for array in parsed] and all(array.dtype in DTYPES for array in parsed)


# -- a family registered with the engine is part of the service's vocabulary -----------


class NoInterceptLinear:
    """``X @ coef``: a linear model without intercept (one output, or k for multiclass)."""

    linear_in_weights = True

    def __init__(self, layout, tasks):
        self.parameter_layout = layout
        self.tasks = tasks

    def predict(self, params, X):
        coef = params["coef"]
        return np.einsum("md,cdk->cmk", X, coef if coef.ndim == 3 else coef[:, :, None])


PLUG_INS = {
    "test-nointercept": NoInterceptLinear({"coef": ("d",)}, ("regression", "binary")),
    "test-nointercept-k": NoInterceptLinear({"coef": ("d", "k")}, ("multiclass",)),
}


@pytest.fixture
def plug_ins():
    """The families of ``PLUG_INS`` registered for one test, removed from the registry after it."""
    for name, family in PLUG_INS.items():
        register_model_family(name, family, replace=True)
    yield PLUG_INS
    for name in PLUG_INS:
        if name in model_family_names():
            unregister_model_family(name)


def test_a_registered_family_is_parsed_from_its_layout(plug_ins):
    parsed = parse_training_spec(model_family="test-nointercept", task="binary", metric="auc",
                                 parameter_spec=spec(("coef", (6,))))
    assert [(a.name, a.shape) for a in parsed] == [("coef", (6,))]
    assert feature_count("test-nointercept", parsed) == 6
    assert class_count("test-nointercept", "binary", parsed) is None

    parsed = parse_training_spec(model_family="test-nointercept-k", task="multiclass", metric="f1",
                                 parameter_spec=spec(("coef", (6, 4))))
    assert feature_count("test-nointercept-k", parsed) == 6
    assert class_count("test-nointercept-k", "multiclass", parsed) == 4


@pytest.mark.parametrize(
    ("family", "task", "metric", "arrays", "message"),
    [
        ("test-nointercept", "regression", "neg_rmse", spec(("coef", (6,)), ("intercept", ())),
         "model_family test-nointercept needs exactly the arrays coef; got coef, intercept."),
        ("test-nointercept", "multiclass", "f1", spec(("coef", (6,))),
         "model_family test-nointercept supports task regression or binary, not multiclass."),
        ("test-nointercept", "binary", "auc", spec(("coef", (6, 1))),
         "test-nointercept array 'coef' must have shape (d,); got [6, 1]."),
        ("test-nointercept-k", "multiclass", "f1", spec(("coef", (6, 1))),
         "task multiclass needs k >= 2 classes; the spec has k = 1."),
    ],
)
def test_a_registered_family_gets_the_same_checks(plug_ins, family, task, metric, arrays, message):
    with pytest.raises(InvalidInput) as raised:
        parse_training_spec(model_family=family, task=task, metric=metric, parameter_spec=arrays)
    assert raised.value.message == message


def test_the_serializer_takes_its_choices_from_the_registry(plug_ins):
    body = {"name": "run", "model_family": "test-nointercept", "task": "regression", "metric": "neg_rmse",
            "parameter_spec": spec(("coef", (3,)))}
    accepted = TrainingRunInput(data=body)
    assert accepted.is_valid(), accepted.errors
    unregister_model_family("test-nointercept")
    refused = TrainingRunInput(data=body)
    assert not refused.is_valid() and set(refused.errors) == {"model_family"}


def test_an_unregistered_family_is_refused_and_the_plug_ins_are_gone():
    # Runs after the tests above: their fixture must have emptied the registry again.
    assert [name for name in model_family_names() if name.startswith("test-")] == []
    with pytest.raises(InvalidInput) as raised:
        parse_training_spec(model_family="test-nointercept", task="regression", metric="neg_rmse",
                            parameter_spec=spec(("coef", (3,))))
    assert raised.value.message == 'model_family must be one of linear, logistic, softmax, mlp; got "test-nointercept".'
