"""Splitting an amount of money by weights, exactly: the largest-remainder (Hamilton) method.

Pure (no Django). The total is cut into quanta (the currency's minor unit, by default one
cent); every key first gets the whole quanta of its exact share ``total * w / Σw``, and the
quanta left over go one each to the keys with the largest fractional remainders, ties to
the lower key. So the amounts sum exactly to the total, each is within one quantum of its
exact share, and neither the order of the mapping nor a common factor of the weights
changes anything: all arithmetic is on exact fractions (a float weight counts as the exact
binary number it is).

    >>> allocate(Decimal("0.10"), {"c": 3, "a": 6, "b": 3})
    {'a': Decimal('0.05'), 'b': Decimal('0.03'), 'c': Decimal('0.02')}
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from decimal import Decimal, localcontext
from fractions import Fraction
from numbers import Rational

__all__ = ["allocate", "exact_shares", "quanta_amount"]


def allocate(total: Decimal, weights: Mapping[Hashable, object], *, quantum: Decimal = Decimal("0.01")) -> dict:
    """``total`` split in proportion to ``weights``, in whole quanta, summing exactly to it.

    ``weights`` maps keys (mutually orderable: ties go to the lower key) to non-negative
    numbers (int, Decimal, Fraction or finite float). The result has the same keys, in
    key order, with ``Decimal`` amounts that are multiples of ``quantum``. A negative total
    is split as its opposite, negated. ValueError: a negative or non-finite weight, weights
    that are all zero (or none), a total that is not a multiple of ``quantum``, a
    ``quantum`` that is not a positive Decimal.
    """
    units = _units(total, quantum)
    shares = exact_shares(abs(units), weights)
    floors = {key: math.floor(share) for key, share in shares.items()}
    left = abs(units) - sum(floors.values())
    # The left-over quanta (fewer than there are keys) to the largest remainders, ties to
    # the lower key: the order is total, so the result does not depend on the mapping's.
    by_remainder = sorted(shares, key=lambda key: (-(shares[key] - floors[key]), key))
    for key in by_remainder[:left]:
        floors[key] += 1
    sign = -1 if units < 0 else 1
    return {key: quanta_amount(sign * floors[key], quantum) for key in sorted(floors)}


def exact_shares(units: int, weights: Mapping[Hashable, object]) -> dict:
    """Each key's exact share of ``units`` as a Fraction (``units * w / Σw``)."""
    exact = {key: _weight(key, value) for key, value in weights.items()}
    whole = sum(exact.values(), Fraction(0))
    if whole == 0:
        raise ValueError("weights are all zero (or there are none): there is nothing to split by")
    return {key: units * value / whole for key, value in exact.items()}


def _units(total: Decimal, quantum: Decimal) -> int:
    if not isinstance(quantum, Decimal) or not quantum.is_finite() or quantum <= 0:
        raise ValueError(f"quantum must be a positive Decimal, got {quantum!r}")
    if not isinstance(total, Decimal) or not total.is_finite():
        raise ValueError(f"total must be a finite Decimal, got {total!r}")
    units = Fraction(total) / Fraction(quantum)
    if units.denominator != 1:
        raise ValueError(f"total {total} is not a whole number of quanta of {quantum}")
    return int(units)


def _weight(key, value) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (Rational, Decimal, float)):
        raise ValueError(f"weight of {key!r} must be a number, got {type(value).__name__}")
    if isinstance(value, (Decimal, float)) and not math.isfinite(value):
        raise ValueError(f"weight of {key!r} must be finite, got {value}")
    exact = Fraction(value)
    if exact < 0:
        raise ValueError(f"weight of {key!r} is negative ({value}); weights are non-negative")
    return exact


def quanta_amount(units: int, quantum: Decimal) -> Decimal:
    """``units * quantum`` exactly, with the quantum's exponent (0.05, not 0.050)."""
    with localcontext() as context:
        context.prec = len(str(abs(units))) + len(quantum.as_tuple().digits) + 1  # never rounds
        return Decimal(units) * quantum
