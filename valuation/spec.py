"""Parameter specs of training runs: which arrays a model family has, with which shapes.

The vocabulary (model families, tasks, metrics per task, each family's parameter layout)
is the engine's registry (``valuation.engine``), read at call time, so a family added
with ``register_model_family`` is accepted here without a change. For the built-ins the
rules are those of DESIGN.md section 4 (``linear`` and ``logistic``: ``coef`` (d,),
``intercept`` (); ``softmax``: ``coef`` (d, k), ``intercept`` (k,); ``mlp``: ``W1`` (d, h),
``b1`` (h,), ``W2`` (h, k), ``b2`` (k,), k = 1 for binary and regression). What stays
here are the wire rules of uploads (dtypes, the largest dimension) and the messages.
Every refusal is a :class:`core.errors.InvalidInput` about the request body as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInput
from valuation.engine import (
    METRICS,
    METRICS_BY_TASK,
    TASKS,
    ModelFamily,
    check_output_count,
    get_model_family,
    model_family_names,
)

DTYPES = ("float32", "float64")
MAX_DIMENSION = 1_000_000


@dataclass(frozen=True)
class ArraySpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def _choice(value, allowed, what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _family(model_family) -> ModelFamily:
    _choice(model_family, model_family_names(), "model_family")
    return get_model_family(model_family)


def _parse_array_spec(raw, position: int) -> ArraySpec:
    if not isinstance(raw, dict) or set(raw) != {"name", "shape", "dtype"}:
        raise InvalidInput(f"parameter_spec[{position}] must be an object with exactly name, shape and dtype.")
    name, shape, dtype = raw["name"], raw["shape"], raw["dtype"]
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"parameter_spec[{position}].name must be a non-empty string.")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise InvalidInput(f"parameter_spec[{position}] ({name}): shape must be a list of integers.")
    if any(n < 1 or n > MAX_DIMENSION for n in shape):
        raise InvalidInput(
            f"parameter_spec[{position}] ({name}): every dimension must be between 1 and {MAX_DIMENSION}."
        )
    _choice(dtype, DTYPES, f"parameter_spec[{position}] ({name}): dtype")
    return ArraySpec(name=name, shape=tuple(shape), dtype=dtype)


def _bind_dimensions(family: str, arrays: dict[str, ArraySpec]) -> dict[str, int]:
    """Check each array's rank and that shared symbols (d, h, k) agree across arrays."""
    bound: dict[str, int] = {}
    for name, symbols in get_model_family(family).parameter_layout.items():
        shape = arrays[name].shape
        if len(shape) != len(symbols):
            expected = "(" + ", ".join(symbols) + ("," if len(symbols) == 1 else "") + ")"
            raise InvalidInput(f"{family} array {name!r} must have shape {expected}; got {list(shape)}.")
        for symbol, size in zip(symbols, shape):
            if bound.setdefault(symbol, size) != size:
                raise InvalidInput(
                    f"{family} array {name!r}: dimension {symbol} is {size} but other arrays say {bound[symbol]}."
                )
    return bound


def parse_training_spec(*, model_family, task, metric, parameter_spec) -> list[ArraySpec]:
    """Validate a training run's declaration and return its arrays in a canonical order."""
    family = _family(model_family)
    _choice(task, TASKS, "task")
    _choice(metric, METRICS, "metric")
    if task not in family.tasks:
        raise InvalidInput(f"model_family {model_family} supports task {' or '.join(family.tasks)}, not {task}.")
    if metric not in METRICS_BY_TASK[task]:
        raise InvalidInput(
            f"metric {metric} does not apply to task {task}; use one of {', '.join(METRICS_BY_TASK[task])}."
        )
    if not isinstance(parameter_spec, list) or not parameter_spec:
        raise InvalidInput("parameter_spec must be a non-empty list of {name, shape, dtype}.")
    arrays: dict[str, ArraySpec] = {}
    for position, raw in enumerate(parameter_spec):
        array = _parse_array_spec(raw, position)
        if array.name in arrays:
            raise InvalidInput(f"parameter_spec names array {array.name!r} twice.")
        arrays[array.name] = array
    expected = list(family.parameter_layout)
    if set(arrays) != set(expected):
        raise InvalidInput(
            f"model_family {model_family} needs exactly the arrays {', '.join(expected)}; got {', '.join(arrays)}."
        )
    k = _bind_dimensions(model_family, arrays).get("k")
    if k is not None:
        try:
            check_output_count(task, k)
        except ValueError as exc:
            raise InvalidInput(f"{exc}; the spec has k = {k}.") from None
    return [arrays[name] for name in expected]


def _dimensions(model_family: str, arrays: list[ArraySpec]) -> dict[str, int]:
    """The sizes of the layout's symbols in a parsed spec (first array that names each)."""
    shapes = {a.name: a.shape for a in arrays}
    bound: dict[str, int] = {}
    for name, symbols in _family(model_family).parameter_layout.items():
        for symbol, size in zip(symbols, shapes[name]):
            bound.setdefault(symbol, size)
    return bound


def feature_count(model_family: str, arrays: list[ArraySpec]) -> int:
    """d, the number of input features the model expects."""
    return _dimensions(model_family, arrays)["d"]


def class_count(model_family: str, task: str, arrays: list[ArraySpec]) -> int | None:
    """k for multiclass models, None otherwise."""
    if task != "multiclass":
        return None
    return _dimensions(model_family, arrays)["k"]
