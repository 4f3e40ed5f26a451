"""Parameter specs of training runs: which arrays a model family has, with which shapes.

Pure Python: the rules of DESIGN.md section 4 (``linear`` and ``logistic``: ``coef`` (d,),
``intercept`` (); ``softmax``: ``coef`` (d, k), ``intercept`` (k,); ``mlp``: ``W1`` (d, h),
``b1`` (h,), ``W2`` (h, k), ``b2`` (k,), k = 1 for binary and regression).
"""

from __future__ import annotations

from dataclasses import dataclass

MODEL_FAMILIES = ("linear", "logistic", "softmax", "mlp")
TASKS = ("regression", "binary", "multiclass")
METRICS = ("neg_log_loss", "accuracy", "auc", "f1", "neg_rmse")
DTYPES = ("float32", "float64")

TASKS_BY_FAMILY = {
    "linear": ("regression",),
    "logistic": ("binary",),
    "softmax": ("multiclass",),
    "mlp": TASKS,
}
METRICS_BY_TASK = {
    "regression": ("neg_rmse",),
    "binary": ("neg_log_loss", "accuracy", "auc", "f1"),
    "multiclass": ("neg_log_loss", "accuracy", "f1"),
}
# Array names in the order the spec lists them, with symbolic shapes.
ARRAYS_BY_FAMILY = {
    "linear": {"coef": ("d",), "intercept": ()},
    "logistic": {"coef": ("d",), "intercept": ()},
    "softmax": {"coef": ("d", "k"), "intercept": ("k",)},
    "mlp": {"W1": ("d", "h"), "b1": ("h",), "W2": ("h", "k"), "b2": ("k",)},
}
MAX_DIMENSION = 1_000_000


class SpecError(ValueError):
    """A spec or an upload does not fit the rules; the message says exactly why."""


@dataclass(frozen=True)
class ArraySpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def _choice(value, allowed, what: str) -> str:
    if value not in allowed:
        raise SpecError(f"{what} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _parse_array_spec(raw, position: int) -> ArraySpec:
    if not isinstance(raw, dict) or set(raw) != {"name", "shape", "dtype"}:
        raise SpecError(f"parameter_spec[{position}] must be an object with exactly name, shape and dtype.")
    name, shape, dtype = raw["name"], raw["shape"], raw["dtype"]
    if not isinstance(name, str) or not name:
        raise SpecError(f"parameter_spec[{position}].name must be a non-empty string.")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise SpecError(f"parameter_spec[{position}] ({name}): shape must be a list of integers.")
    if any(n < 1 or n > MAX_DIMENSION for n in shape):
        raise SpecError(f"parameter_spec[{position}] ({name}): every dimension must be between 1 and {MAX_DIMENSION}.")
    _choice(dtype, DTYPES, f"parameter_spec[{position}] ({name}): dtype")
    return ArraySpec(name=name, shape=tuple(shape), dtype=dtype)


def _bind_dimensions(family: str, arrays: dict[str, ArraySpec]) -> dict[str, int]:
    """Check each array's rank and that shared symbols (d, h, k) agree across arrays."""
    bound: dict[str, int] = {}
    for name, symbols in ARRAYS_BY_FAMILY[family].items():
        shape = arrays[name].shape
        if len(shape) != len(symbols):
            expected = "(" + ", ".join(symbols) + ("," if len(symbols) == 1 else "") + ")"
            raise SpecError(f"{family} array {name!r} must have shape {expected}; got {list(shape)}.")
        for symbol, size in zip(symbols, shape):
            if bound.setdefault(symbol, size) != size:
                raise SpecError(
                    f"{family} array {name!r}: dimension {symbol} is {size} but other arrays say {bound[symbol]}."
                )
    return bound


def parse_training_spec(*, model_family, task, metric, parameter_spec) -> list[ArraySpec]:
    """Validate a training run's declaration and return its arrays in a canonical order."""
    _choice(model_family, MODEL_FAMILIES, "model_family")
    _choice(task, TASKS, "task")
    _choice(metric, METRICS, "metric")
    if task not in TASKS_BY_FAMILY[model_family]:
        raise SpecError(f"model_family {model_family} supports task {' or '.join(TASKS_BY_FAMILY[model_family])}, not {task}.")
    if metric not in METRICS_BY_TASK[task]:
        raise SpecError(f"metric {metric} does not apply to task {task}; use one of {', '.join(METRICS_BY_TASK[task])}.")
    if not isinstance(parameter_spec, list) or not parameter_spec:
        raise SpecError("parameter_spec must be a non-empty list of {name, shape, dtype}.")
    arrays: dict[str, ArraySpec] = {}
    for position, raw in enumerate(parameter_spec):
        array = _parse_array_spec(raw, position)
        if array.name in arrays:
            raise SpecError(f"parameter_spec names array {array.name!r} twice.")
        arrays[array.name] = array
    expected = list(ARRAYS_BY_FAMILY[model_family])
    if set(arrays) != set(expected):
        raise SpecError(
            f"model_family {model_family} needs exactly the arrays {', '.join(expected)}; got {', '.join(arrays)}."
        )
    dimensions = _bind_dimensions(model_family, arrays)
    k = dimensions.get("k")
    if task in ("binary", "regression") and k not in (None, 1):
        raise SpecError(f"task {task} needs k = 1 output; the spec has k = {k}.")
    if task == "multiclass" and k is not None and k < 2:
        raise SpecError(f"task multiclass needs k >= 2 classes; the spec has k = {k}.")
    return [arrays[name] for name in expected]


def feature_count(model_family: str, arrays: list[ArraySpec]) -> int:
    """d, the number of input features the model expects."""
    first = {"mlp": "W1"}.get(model_family, "coef")
    return next(a.shape[0] for a in arrays if a.name == first)


def class_count(model_family: str, task: str, arrays: list[ArraySpec]) -> int | None:
    """k for multiclass models, None otherwise."""
    if task != "multiclass":
        return None
    last = {"mlp": "b2"}.get(model_family, "intercept")
    return next(a.shape[0] for a in arrays if a.name == last)
