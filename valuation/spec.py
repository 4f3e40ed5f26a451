"""Parameter specs of training runs: which arrays a model family has, with which shapes.

The vocabulary (model families, tasks, metrics per task, each family's parameter layout)
is the engine's registry (``valuation.engine``), read at call time, so a family added
with ``register_model_family`` is accepted here without a change. For the built-ins the
rules are those of DESIGN.md section 4 (``linear`` and ``logistic``: ``coef`` (d,),
``intercept`` (); ``softmax``: ``coef`` (d, k), ``intercept`` (k,); ``mlp``: ``W1`` (d, h),
``b1`` (h,), ``W2`` (h, k), ``b2`` (k,), k = 1 for binary and regression). What stays
here are the wire rules of uploads (dtypes, the largest dimension, how many arrays and
dimensions a declaration may have) and the messages.
Every refusal is a :class:`core.errors.InvalidInput` about the request body as a whole.

``parameter_spec`` is whatever JSON the client sent, so it is read defensively: a list of
more than :data:`MAX_ARRAYS` entries, or a shape of more than :data:`MAX_NDIM` dimensions,
is refused before any entry is looked at, and nothing here descends into nested values.
Messages never show a Python representation of client data: a value the client sent is
rendered as JSON (strings truncated to :data:`MESSAGE_TEXT_LIMIT` characters, arrays and
objects by their JSON type name only, see :func:`json_excerpt`) and a name the client
chose is quoted with its unprintable characters escaped (:func:`quoted`).
:mod:`valuation.npz` uses the same helpers for the names found in an archive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
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
# The most arrays one parameter_spec (and so one uploaded archive) may declare, and the
# most dimensions one array may have. The built-in families need 2 to 4 arrays of rank
# 0 to 2; the bounds leave room for registered families and refuse absurd bodies cheaply.
MAX_ARRAYS = 256
MAX_NDIM = 8
# How many characters of a client's string a message shows, and how many names a list shows.
MESSAGE_TEXT_LIMIT = 64
MESSAGE_NAMES_LIMIT = 10

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def quoted(text: str, limit: int = MESSAGE_TEXT_LIMIT) -> str:
    """``text`` in single quotes for a message: at most ``limit`` characters (then ``…``),
    backslashes, quotes and unprintable characters escaped (``\\x07``, ``\\u202e``)."""
    shown = []
    for ch in text[:limit]:
        if ch in "\\'":
            shown.append("\\" + ch)
        elif ch.isprintable():
            shown.append(ch)
        else:
            code = ord(ch)
            shown.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "'" + "".join(shown) + ("…" if len(text) > limit else "") + "'"


def display_name(name: str) -> str:
    """A name as a list in a message shows it: bare when it is plain (letters, digits,
    ``_``, ``.``, ``-``, at most the text limit), quoted otherwise."""
    if len(name) <= MESSAGE_TEXT_LIMIT and _PLAIN_NAME.fullmatch(name):
        return name
    return quoted(name)


def names_text(names: Iterable[str], limit: int = MESSAGE_NAMES_LIMIT) -> str:
    """``a, b, c`` for a message: at most ``limit`` names, then how many more there are."""
    names = list(names)
    shown = ", ".join(display_name(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def json_excerpt(value, limit: int = MESSAGE_TEXT_LIMIT) -> str:
    """A value a client sent, as a message shows it: JSON for strings, numbers, booleans
    and null (a string cut after ``limit`` characters, marked ``…``); an array or an
    object by its JSON type only, so that no message grows with (or recurses into) a body."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return json.dumps(value) if value.bit_length() <= 128 else "a very large integer"
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, str):
        if len(value) > limit:
            return json.dumps(value[:limit])[:-1] + '…"'
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "a JSON array"
    if isinstance(value, dict):
        return "a JSON object"
    return "a value that is not JSON"


@dataclass(frozen=True)
class ArraySpec:
    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def _choice(value, allowed, what: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"{what} must be one of {', '.join(allowed)}; got {json_excerpt(value)}.")
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
    where = f"parameter_spec[{position}] ({display_name(name)})"
    if not isinstance(shape, list):
        raise InvalidInput(f"{where}: shape must be a list of integers.")
    if len(shape) > MAX_NDIM:
        raise InvalidInput(f"{where}: shape has {len(shape)} dimensions; at most {MAX_NDIM} are accepted.")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise InvalidInput(f"{where}: shape must be a list of integers.")
    if any(n < 1 or n > MAX_DIMENSION for n in shape):
        raise InvalidInput(f"{where}: every dimension must be between 1 and {MAX_DIMENSION}.")
    _choice(dtype, DTYPES, f"{where}: dtype")
    return ArraySpec(name=name, shape=tuple(shape), dtype=dtype)


def _bind_dimensions(family: str, arrays: dict[str, ArraySpec]) -> dict[str, int]:
    """Check each array's rank and that shared symbols (d, h, k) agree across arrays."""
    bound: dict[str, int] = {}
    for name, symbols in get_model_family(family).parameter_layout.items():
        shape = arrays[name].shape
        if len(shape) != len(symbols):
            expected = "(" + ", ".join(symbols) + ("," if len(symbols) == 1 else "") + ")"
            raise InvalidInput(f"{family} array {quoted(name)} must have shape {expected}; got {list(shape)}.")
        for symbol, size in zip(symbols, shape):
            if bound.setdefault(symbol, size) != size:
                raise InvalidInput(
                    f"{family} array {quoted(name)}: dimension {symbol} is {size} but other arrays say {bound[symbol]}."
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
    if len(parameter_spec) > MAX_ARRAYS:
        raise InvalidInput(f"parameter_spec has {len(parameter_spec)} arrays; at most {MAX_ARRAYS} are accepted.")
    arrays: dict[str, ArraySpec] = {}
    for position, raw in enumerate(parameter_spec):
        array = _parse_array_spec(raw, position)
        if array.name in arrays:
            raise InvalidInput(f"parameter_spec names array {quoted(array.name)} twice.")
        arrays[array.name] = array
    expected = list(family.parameter_layout)
    if set(arrays) != set(expected):
        raise InvalidInput(
            f"model_family {model_family} needs exactly the arrays {names_text(expected)}; got {names_text(arrays)}."
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
