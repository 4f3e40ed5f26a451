"""The engine's vocabulary: tasks, metrics per task, label rules, model families and
their parameter layouts (the service takes all of it from here)."""

import numpy as np
import pytest

from valuation.engine import (
    METRICS,
    METRICS_BY_TASK,
    TASKS,
    FLRoundGame,
    check_labels,
    check_output_count,
    get_model_family,
    model_family_names,
    register_model_family,
    unregister_model_family,
)
from valuation.engine.families import parameter_shapes


class Family:
    """A plug-in family built from its parts: a linear score without intercept."""

    def __init__(self, layout=None, tasks=("regression",), linear_in_weights=False):
        self.parameter_layout = {"coef": ("d",)} if layout is None else layout
        self.tasks = tasks
        self.linear_in_weights = linear_in_weights

    def predict(self, params, X):
        return (params["coef"] @ X.T)[:, :, None]


# -- tasks and metrics ----------------------------------------------------------------


def test_metrics_by_task_is_the_one_list_of_design_section_4():
    assert TASKS == ("regression", "binary", "multiclass")
    assert METRICS == ("neg_log_loss", "accuracy", "auc", "f1", "neg_rmse")
    assert METRICS_BY_TASK == {
        "regression": ("neg_rmse",),
        "binary": ("neg_log_loss", "accuracy", "auc", "f1"),
        "multiclass": ("neg_log_loss", "accuracy", "f1"),
    }
    assert set(METRICS_BY_TASK) == set(TASKS)
    assert {m for metrics in METRICS_BY_TASK.values() for m in metrics} == set(METRICS)


def _round(task, metric, y, k=1):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(y.size, 3))
    shapes = {"W1": (3, 4), "b1": (4,), "W2": (4, k), "b2": (k,)}
    weights = {name: rng.normal(size=shape) for name, shape in shapes.items()}
    updates = [{name: rng.normal(size=shape) for name, shape in shapes.items()} for _ in range(2)]
    return FLRoundGame(family="mlp", task=task, metric=metric, global_weights=weights, updates=updates,
                       num_examples=[1, 2], X=X, y=y)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("metric", METRICS)
def test_a_game_accepts_exactly_the_metrics_listed_for_its_task(task, metric):
    k, y = {"regression": (1, np.linspace(-1, 1, 12)), "binary": (1, np.arange(12) % 2.0),
            "multiclass": (3, np.arange(12) % 3.0)}[task]
    if metric in METRICS_BY_TASK[task]:
        game = _round(task, metric, y, k)
        assert np.isfinite(game.utility(np.ones((1, 2), dtype=bool))).all()
    else:
        with pytest.raises(ValueError, match=f"metric '{metric}' is not defined for task '{task}'"):
            _round(task, metric, y, k)


# -- labels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "y", "n_classes"),
    [
        ("binary", [0, 1, 1, 0], None),
        ("binary", np.array([0.0, 1.0]), None),
        ("binary", np.array([True, False]), None),
        ("multiclass", [0, 1, 2, 2], 3),
        ("multiclass", np.array([0.0, 4.0]), 5),
        ("regression", [-3.5, 0.25, 1e6], None),
    ],
)
def test_labels_that_fit_the_task_pass(task, y, n_classes):
    check_labels(task, y, n_classes)


@pytest.mark.parametrize("y", [[0, 2], [0, -1], [0.5, 1], [0, np.nan], [1, np.inf]])
def test_binary_labels_must_be_0_or_1(y):
    with pytest.raises(ValueError) as raised:
        check_labels("binary", np.array(y), None)
    assert str(raised.value) == "binary labels must be 0 or 1"


@pytest.mark.parametrize("y", [[0, 3], [-1, 0], [1.5, 2], [0, np.nan]])
def test_multiclass_labels_must_be_class_indices(y):
    with pytest.raises(ValueError) as raised:
        check_labels("multiclass", np.array(y), 3)
    assert str(raised.value) == "multiclass labels must be integers from 0 to 2"


def test_check_labels_refuses_an_unknown_task_and_a_missing_class_count():
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        check_labels("ranking", [0, 1], None)
    with pytest.raises(ValueError, match="n_classes"):
        check_labels("multiclass", [0, 1], None)


def test_games_apply_the_same_label_rules():
    with pytest.raises(ValueError, match="^binary labels must be 0 or 1$"):
        _round("binary", "accuracy", np.array([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="^multiclass labels must be integers from 0 to 2$"):
        _round("multiclass", "accuracy", np.array([0.0, 1.0, 3.0, 1.0]), k=3)


# -- model families ------------------------------------------------------------------


def test_built_in_families_have_the_layouts_of_design_section_4():
    assert model_family_names()[:4] == ("linear", "logistic", "softmax", "mlp")
    layouts = {name: dict(get_model_family(name).parameter_layout) for name in ("linear", "logistic", "softmax", "mlp")}
    assert layouts == {
        "linear": {"coef": ("d",), "intercept": ()},
        "logistic": {"coef": ("d",), "intercept": ()},
        "softmax": {"coef": ("d", "k"), "intercept": ("k",)},
        "mlp": {"W1": ("d", "h"), "b1": ("h",), "W2": ("h", "k"), "b2": ("k",)},
    }
    assert list(get_model_family("mlp").parameter_layout) == ["W1", "b1", "W2", "b2"]  # the order is the spec's
    assert [get_model_family(name).tasks for name in ("linear", "logistic", "softmax", "mlp")] == [
        ("regression",), ("binary",), ("multiclass",), ("regression", "binary", "multiclass")]


def test_built_in_layouts_cannot_be_changed_in_place():
    with pytest.raises(TypeError):
        get_model_family("softmax").parameter_layout["bias"] = ("k",)


def test_a_registered_family_is_listed_and_found_until_unregistered():
    family = Family()
    register_model_family("test-listed", family)
    try:
        assert model_family_names()[-1] == "test-listed"
        assert get_model_family("test-listed") is family
    finally:
        unregister_model_family("test-listed")
    assert "test-listed" not in model_family_names()
    with pytest.raises(ValueError, match="unknown model family 'test-listed'"):
        get_model_family("test-listed")
    with pytest.raises(ValueError, match="unknown model family"):
        unregister_model_family("test-listed")


class _NoLayout:  # the protocol before parameter_layout: shapes from a method
    linear_in_weights = False
    tasks = ("regression",)

    def parameter_shapes(self, *, n_features, task, weights):
        return {"coef": (n_features,)}

    def predict(self, params, X):
        return (params["coef"] @ X.T)[:, :, None]


@pytest.mark.parametrize(
    ("family", "message"),
    [
        (_NoLayout(), "parameter_layout"),
        (Family(layout={}), "non-empty mapping"),
        (Family(layout=[("coef", ("d",))]), "non-empty mapping"),
        (Family(layout={"coef": ["d"]}), r"parameter_layout\['coef'\] must be a tuple of symbol names"),
        (Family(layout={"coef": "d"}), "must be a tuple of symbol names"),
        (Family(layout={"coef": ("d", 3)}), "must be a tuple of symbol names"),
        (Family(layout={"coef": ("d", "")}), "must be a tuple of symbol names"),
        (Family(layout={"": ("d",)}), "array name"),
        (Family(layout={"coef": ("n",)}), "symbol 'd'"),
        (Family(layout={"coef": ()}), "symbol 'd'"),
        (Family(tasks=("multiclass",)), "symbol 'k'"),
        (Family(tasks=("ranking",)), "tasks must be"),
        (Family(tasks=()), "tasks must be"),
        (Family(tasks=["regression"]), "tasks must be"),
        (Family(tasks=("binary", "binary")), "tasks must be"),
        (Family(linear_in_weights="no"), "linear_in_weights"),
    ],
)
def test_register_model_family_validates_the_family(family, message):
    before = model_family_names()
    with pytest.raises(ValueError, match=message):
        register_model_family("test-invalid", family)
    assert model_family_names() == before


def test_a_family_for_multiclass_with_k_and_free_symbols_is_valid(register_family):
    register_family("test-valid", Family(layout={"coef": ("d", "r"), "mix": ("r", "k")}, tasks=("multiclass", "binary")))
    assert "test-valid" in model_family_names()


@pytest.mark.parametrize("name", ["", None, 3])
def test_a_family_needs_a_name(name):
    with pytest.raises(ValueError, match="name"):
        register_model_family(name, Family())


# -- shapes from the layout ----------------------------------------------------------


def test_parameter_shapes_bind_d_from_the_features_and_the_other_symbols_from_the_arrays():
    mlp = get_model_family("mlp")
    weights = {"W1": np.zeros((9, 5)), "b1": np.zeros(5), "W2": np.zeros((5, 3)), "b2": np.zeros(3)}
    assert parameter_shapes(mlp, n_features=4, task="multiclass", weights=weights) == {
        "W1": (4, 5), "b1": (5,), "W2": (5, 3), "b2": (3,)}
    softmax = get_model_family("softmax")
    # k comes from the first array with the layout's rank: here intercept, as coef is flat.
    assert parameter_shapes(softmax, n_features=2, task="multiclass", weights={"coef": np.zeros(2), "intercept": np.zeros(4)}) == {
        "coef": (2, 4), "intercept": (4,)}
    assert parameter_shapes(get_model_family("linear"), n_features=7, task="regression", weights={}) == {
        "coef": (7,), "intercept": ()}


@pytest.mark.parametrize(
    ("family", "task", "weights", "message"),
    [
        ("mlp", "binary", {"W1": np.zeros((3, 4)), "b1": np.zeros(4), "W2": np.zeros((4, 2)), "b2": np.zeros(2)},
         "^task binary needs k = 1 output; the weights have k = 2$"),
        ("mlp", "multiclass", {"W1": np.zeros((3, 4)), "b1": np.zeros(4), "W2": np.zeros((4, 1)), "b2": np.zeros(1)},
         "^task multiclass needs k >= 2 classes; the weights have k = 1$"),
        ("mlp", "regression", {"W1": np.zeros(3), "W2": np.zeros(4)}, "^cannot tell h, k from the weights; expected W1"),
        ("softmax", "multiclass", {"coef": np.zeros(3)}, r"cannot tell k from the weights; expected coef \(d, k\), intercept \(k,\)"),
    ],
)
def test_parameter_shapes_say_which_symbol_does_not_fit(family, task, weights, message):
    with pytest.raises(ValueError, match=message):
        parameter_shapes(get_model_family(family), n_features=3, task=task, weights=weights)


@pytest.mark.parametrize(("task", "k", "fits"), [("binary", 1, True), ("regression", 1, True), ("binary", 2, False),
                                                 ("multiclass", 2, True), ("multiclass", 1, False)])
def test_check_output_count(task, k, fits):
    if fits:
        check_output_count(task, k)
    else:
        with pytest.raises(ValueError, match=f"task {task} needs"):
            check_output_count(task, k)


def test_a_round_checks_the_arrays_against_the_shapes_from_the_layout():
    rng = np.random.default_rng(1)
    good = {"W1": rng.normal(size=(3, 4)), "b1": rng.normal(size=4), "W2": rng.normal(size=(4, 1)), "b2": rng.normal(size=1)}
    bad = dict(good, b1=np.zeros(5))  # h is 4 in W1
    with pytest.raises(ValueError, match=r"updates\[1\]\['b1'\] has shape \(5,\); expected \(4,\)"):
        FLRoundGame(family="mlp", task="regression", metric="neg_rmse", global_weights=good, updates=[good, bad],
                    num_examples=[1, 1], X=rng.normal(size=(6, 3)), y=rng.normal(size=6))


def test_a_family_predicting_the_wrong_number_of_outputs_is_refused(register_family):
    class TwoColumns(Family):
        def predict(self, params, X):
            scores = (params["coef"] @ X.T)[:, :, None]
            return np.concatenate([scores, -scores], axis=2)

    register_family("test-two-columns", TwoColumns(tasks=("binary",)))
    with pytest.raises(ValueError, match="predicts 2 outputs per row: task binary needs k = 1 output"):
        FLRoundGame(family="test-two-columns", task="binary", metric="accuracy", global_weights={"coef": np.zeros(2)},
                    updates=[{"coef": np.ones(2)}], num_examples=[1], X=np.ones((4, 2)), y=np.array([0.0, 1.0, 0.0, 1.0]))
