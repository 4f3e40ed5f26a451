"""Model families: parameter layouts and batched prediction, plus the plug-in registry.

A family declares its ``parameter_layout``: its arrays, in order, each with a symbolic
shape. ``"d"`` is the number of features (every layout has it), ``"k"`` the number of
outputs (1 for binary and regression, the number of classes for multiclass; a family
for multiclass must have it); any other symbol (the MLP's ``"h"``) is free and bound by
the arrays themselves. The layout is the one statement of a family's arrays: the engine
derives the shapes a round's weights must have from it (:func:`parameter_shapes`), and
the service derives the parameter specs it accepts from it, so a family added with
:func:`register_model_family` can be ingested and valued without touching the service.

A family turns a *batch* of parameter dicts (every array with a leading coalition
axis c) into outputs (c, m, k) on the validation features. Families whose outputs are
linear in the parameters (``linear_in_weights``) let an FL game aggregate in output
space: each participant's ``X·Δ_i`` is computed once and a coalition then costs O(m·k).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .metrics import TASKS

__all__ = [
    "ModelFamily",
    "register_model_family",
    "unregister_model_family",
    "get_model_family",
    "model_family_names",
    "check_output_count",
    "parameter_shapes",
]


@runtime_checkable
class ModelFamily(Protocol):
    """What the engine needs of a model family."""

    linear_in_weights: bool
    tasks: tuple[str, ...]
    parameter_layout: Mapping[str, tuple[str, ...]]
    """Array name -> symbolic shape, in the order the arrays are listed, e.g.
    ``{"coef": ("d", "k"), "intercept": ("k",)}``."""

    def predict(self, params: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
        """Outputs (c, m, k) for batched parameters (each array with leading axis c)."""
        ...


class _LinearScore:
    """``linear`` and ``logistic``: one score per row, ``X @ coef + intercept``."""

    linear_in_weights = True
    parameter_layout = MappingProxyType({"coef": ("d",), "intercept": ()})

    def __init__(self, task: str) -> None:
        self.tasks = (task,)

    def predict(self, params, X):
        scores = params["coef"] @ X.T + params["intercept"][:, None]
        return scores[:, :, None]


class _Softmax:
    linear_in_weights = True
    tasks = ("multiclass",)
    parameter_layout = MappingProxyType({"coef": ("d", "k"), "intercept": ("k",)})

    def predict(self, params, X):
        return np.einsum("md,cdk->cmk", X, params["coef"], optimize=True) + params["intercept"][:, None, :]


class _OneHiddenLayerMLP:
    linear_in_weights = False
    tasks = ("regression", "binary", "multiclass")
    parameter_layout = MappingProxyType({"W1": ("d", "h"), "b1": ("h",), "W2": ("h", "k"), "b2": ("k",)})

    def predict(self, params, X):
        hidden = np.matmul(X[None, :, :], params["W1"])
        hidden += params["b1"][:, None, :]
        np.maximum(hidden, 0.0, out=hidden)
        outputs = np.matmul(hidden, params["W2"])
        outputs += params["b2"][:, None, :]
        return outputs


# Registration order is the order the service lists the families in.
_FAMILIES: dict[str, ModelFamily] = {
    "linear": _LinearScore("regression"),
    "logistic": _LinearScore("binary"),
    "softmax": _Softmax(),
    "mlp": _OneHiddenLayerMLP(),
}


def _check_family(family: Any) -> None:
    if not isinstance(family, ModelFamily):
        raise ValueError("a model family needs linear_in_weights, tasks, parameter_layout and predict()")
    if not isinstance(family.linear_in_weights, bool):
        raise ValueError("linear_in_weights must be True or False")
    tasks = family.tasks
    if not isinstance(tasks, tuple) or not tasks or len(set(tasks)) != len(tasks) or not set(tasks) <= set(TASKS):
        raise ValueError(f"tasks must be a non-empty tuple of distinct tasks from {TASKS}, got {tasks!r}")
    if not callable(family.predict):
        raise ValueError("predict must be a method predict(params, X) -> outputs (c, m, k)")
    layout = family.parameter_layout
    if not isinstance(layout, Mapping) or not layout:
        raise ValueError("parameter_layout must be a non-empty mapping of array names to symbolic shapes")
    symbols: set[str] = set()
    for name, shape in layout.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"parameter_layout has an array name that is not a non-empty string: {name!r}")
        if not isinstance(shape, tuple) or not all(isinstance(s, str) and s for s in shape):
            raise ValueError(f"parameter_layout[{name!r}] must be a tuple of symbol names such as ('d', 'k'), got {shape!r}")
        symbols.update(shape)
    if "d" not in symbols:
        raise ValueError("parameter_layout must use the symbol 'd' (the number of features) in some array")
    if "multiclass" in tasks and "k" not in symbols:
        raise ValueError("a family for task multiclass needs the symbol 'k' (the number of classes) in its parameter_layout")


def register_model_family(name: str, family: ModelFamily, *, replace: bool = False) -> None:
    """Make ``family`` available as ``name`` to :class:`~valuation.engine.fl.FLRoundGame`
    and to the service (whose vocabulary is this registry)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a model family's name must be a non-empty string, got {name!r}")
    _check_family(family)
    if name in _FAMILIES and not replace:
        raise ValueError(f"model family {name!r} is already registered")
    _FAMILIES[name] = family


def unregister_model_family(name: str) -> None:
    """Forget the family registered as ``name`` (a plug-in's teardown)."""
    get_model_family(name)
    del _FAMILIES[name]


def get_model_family(name: str) -> ModelFamily:
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model family {name!r}; expected one of {sorted(_FAMILIES)}") from None


def model_family_names() -> tuple[str, ...]:
    """The registered families, built-ins first, then in order of registration."""
    return tuple(_FAMILIES)


def check_output_count(task: str, k: int) -> None:
    """Raise ``ValueError`` unless ``k`` outputs fit ``task`` (k = 1 for binary and
    regression, k >= 2 classes for multiclass)."""
    if task == "multiclass":
        if k < 2:
            raise ValueError("task multiclass needs k >= 2 classes")
    elif k != 1:
        raise ValueError(f"task {task} needs k = 1 output")


def _shape_text(symbols: tuple[str, ...]) -> str:
    return "(" + ", ".join(symbols) + ("," if len(symbols) == 1 else "") + ")"


def parameter_shapes(
    family: ModelFamily, *, n_features: int, task: str, weights: Mapping[str, Any]
) -> dict[str, tuple[int, ...]]:
    """The shapes the arrays of ``weights`` must have, from the family's layout.

    ``d`` is ``n_features``; every other symbol takes its size from the first array (in
    layout order) that has the layout's number of dimensions. Whether the arrays then
    match these shapes is the caller's check; this raises ``ValueError`` only when a
    symbol cannot be read off the arrays or ``k`` does not fit ``task``.
    """
    layout = family.parameter_layout
    present = weights if isinstance(weights, Mapping) else {}
    bound = {"d": int(n_features)}
    for name, symbols in layout.items():
        shape = np.shape(present[name]) if name in present else None
        if shape is not None and len(shape) == len(symbols):
            for symbol, size in zip(symbols, shape):
                bound.setdefault(symbol, int(size))
    unbound = [s for s in dict.fromkeys(s for symbols in layout.values() for s in symbols) if s not in bound]
    if unbound:
        expected = ", ".join(f"{name} {_shape_text(symbols)}" for name, symbols in layout.items())
        raise ValueError(f"cannot tell {', '.join(unbound)} from the weights; expected {expected}")
    if "k" in bound:
        try:
            check_output_count(task, bound["k"])
        except ValueError as exc:
            raise ValueError(f"{exc}; the weights have k = {bound['k']}") from None
    return {name: tuple(bound[s] for s in symbols) for name, symbols in layout.items()}
