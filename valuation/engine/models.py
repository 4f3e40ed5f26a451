"""Model families: parameter layouts and batched prediction, plus the plug-in registry.

A family turns a *batch* of parameter dicts (every array with a leading coalition
axis c) into outputs (c, m, k) on the validation features. Families whose outputs are
linear in the parameters (``linear_in_weights``) let an FL game aggregate in output
space: each participant's ``X·Δ_i`` is computed once and a coalition then costs O(m·k).

Other frameworks plug in with :func:`register_model_family`: any object with the
:class:`ModelFamily` shape works; the engine never needs to know what is inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["ModelFamily", "register_model_family", "get_model_family", "MODEL_FAMILIES"]


@runtime_checkable
class ModelFamily(Protocol):
    """What the engine needs of a model family."""

    linear_in_weights: bool
    tasks: tuple[str, ...]

    def parameter_shapes(
        self, *, n_features: int, task: str, weights: Mapping[str, np.ndarray]
    ) -> dict[str, tuple[int, ...]]:
        """Expected array shapes; raise ``ValueError`` if ``weights`` cannot be right."""
        ...

    def predict(self, params: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
        """Outputs (c, m, k) for batched parameters (each array with leading axis c)."""
        ...


class _LinearScore:
    """``linear`` and ``logistic``: one score per row, ``X @ coef + intercept``."""

    linear_in_weights = True

    def __init__(self, task: str) -> None:
        self.tasks = (task,)

    def parameter_shapes(self, *, n_features, task, weights):
        return {"coef": (n_features,), "intercept": ()}

    def predict(self, params, X):
        scores = params["coef"] @ X.T + params["intercept"][:, None]
        return scores[:, :, None]


class _Softmax:
    linear_in_weights = True
    tasks = ("multiclass",)

    def parameter_shapes(self, *, n_features, task, weights):
        coef = np.asarray(weights.get("coef", np.zeros((0,))))
        if coef.ndim != 2 or coef.shape[1] < 2:
            raise ValueError(f"softmax coef must have shape (d, k) with k >= 2, got {coef.shape}")
        n_classes = coef.shape[1]
        return {"coef": (n_features, n_classes), "intercept": (n_classes,)}

    def predict(self, params, X):
        return np.einsum("md,cdk->cmk", X, params["coef"], optimize=True) + params["intercept"][:, None, :]


class _OneHiddenLayerMLP:
    linear_in_weights = False
    tasks = ("regression", "binary", "multiclass")

    def parameter_shapes(self, *, n_features, task, weights):
        first = np.asarray(weights.get("W1", np.zeros((0,))))
        second = np.asarray(weights.get("W2", np.zeros((0,))))
        if first.ndim != 2 or second.ndim != 2:
            raise ValueError("mlp needs W1 (d, h) and W2 (h, k)")
        hidden, n_outputs = first.shape[1], second.shape[1]
        if task == "multiclass" and n_outputs < 2:
            raise ValueError("a multiclass mlp needs W2 with k >= 2 columns")
        if task != "multiclass" and n_outputs != 1:
            raise ValueError(f"a {task} mlp needs W2 with exactly one column (k = 1)")
        return {"W1": (n_features, hidden), "b1": (hidden,), "W2": (hidden, n_outputs), "b2": (n_outputs,)}

    def predict(self, params, X):
        hidden = np.matmul(X[None, :, :], params["W1"])
        hidden += params["b1"][:, None, :]
        np.maximum(hidden, 0.0, out=hidden)
        outputs = np.matmul(hidden, params["W2"])
        outputs += params["b2"][:, None, :]
        return outputs


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "linear": _LinearScore("regression"),
    "logistic": _LinearScore("binary"),
    "softmax": _Softmax(),
    "mlp": _OneHiddenLayerMLP(),
}


def register_model_family(name: str, family: ModelFamily, *, replace: bool = False) -> None:
    """Make ``family`` available to :class:`~valuation.engine.fl.FLRoundGame` as ``name``."""
    if not isinstance(family, ModelFamily):
        raise ValueError("a model family needs linear_in_weights, tasks, parameter_shapes() and predict()")
    if name in MODEL_FAMILIES and not replace:
        raise ValueError(f"model family {name!r} is already registered")
    MODEL_FAMILIES[name] = family


def get_model_family(name: str) -> ModelFamily:
    try:
        return MODEL_FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; expected one of {sorted(MODEL_FAMILIES)}") from None
