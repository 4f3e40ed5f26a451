"""Settlement policy: how a revenue pool is split among the participants of a consortium.

Pure (no Django). ``split_pool`` applies the terms of a policy in a fixed order, on exact
fractions and ``Decimal`` money (the only float is a contribution value as it arrives, and
it counts as the exact binary number it is):

1. reserve: ``reserve_rate`` of the pool is kept by the consortium, to the nearest quantum;
   an exact half quantum goes to the participants;
2. weights: a negative contribution counts as zero, and each participant's weight is
   ``α · contribution share + (1 − α) · data-volume share``;
3. shares: every participant that contributed (weight above zero) gets at least the floor
   share and nobody more than the cap share; each share is the weight times one common
   level, held within the bounds, so what the cap cuts and what the floor adds is spread
   over the others in proportion to their weights and a larger weight never gets less;
4. amounts: the distributable amount is split by the shares with the largest-remainder
   method (``incentives.allocation.allocate``), a tie for the last quantum to the lower
   participant key;
5. carry: an amount (with what was carried in) above zero but under ``minimum_payout`` is
   carried to the next period instead of paid, so that
   ``reserve + Σ payouts + Σ carried out == total + Σ carried in``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal, localcontext
from fractions import Fraction
from numbers import Rational

from incentives.allocation import allocate, quanta_amount

__all__ = ["PolicyTerms", "Split", "blended_weights", "bounded_shares", "split_pool", "terms_problems"]

ZERO = Fraction(0)
ONE = Fraction(1)


@dataclass(frozen=True)
class PolicyTerms:
    """The terms of one version of a settlement policy; the defaults split by contribution alone."""

    reserve_rate: Decimal = Decimal("0")  # 0 <= r < 1: share of the pool kept by the consortium
    floor_share: Decimal = Decimal("0")  # 0 <= f <= 1: least share of the distributable amount per contributor
    cap_share: Decimal | None = None  # None or 0 < c <= 1: most share of the distributable amount per participant
    blend_alpha: Decimal = Decimal("1")  # 0 <= a <= 1: weight = a * contribution share + (1 - a) * volume share
    minimum_payout: Decimal = Decimal("0")  # >= 0 currency units: a smaller payout (above zero) is carried
    negative_as_zero: bool = True  # the only treatment of a negative contribution supported for now


@dataclass(frozen=True)
class Split:
    """How one pool was split; every mapping is keyed by participant, in key order."""

    reserve: Decimal  # kept by the consortium
    payouts: dict[str, Decimal]  # paid now to each participant (0 when carried), carried-in amounts included
    carried_out: dict[str, Decimal]  # amounts under minimum_payout carried to the next period (non-zero only)
    carried_in_released: dict[str, Decimal]  # carried-in amounts paid out now (non-zero only)
    shares: dict[str, Fraction]  # final exact shares of the distributable amount (sum 1), after floor and cap
    weights: dict[str, Fraction]  # exact blended weights before floor and cap (sum 1)
    distributable: Decimal  # total - reserve


# Field name -> (lowest, highest, is the lowest allowed, is the highest allowed, what it is).
_RANGES = {
    "reserve_rate": (0, 1, True, False, "a share of the pool"),
    "floor_share": (0, 1, True, True, "a share of the distributable amount"),
    "cap_share": (0, 1, False, True, "a share of the distributable amount"),
    "blend_alpha": (0, 1, True, True, "the weight of the contribution against the data volume"),
    "minimum_payout": (0, None, True, None, "an amount of money"),
}


def terms_problems(terms: PolicyTerms) -> dict[str, str]:
    """Field name -> readable problem, for every term out of range (empty when the terms are valid)."""
    problems = {}
    for field in fields(PolicyTerms):
        value = getattr(terms, field.name)
        if field.name == "negative_as_zero":
            if value is not True:
                problems[field.name] = "only negative_as_zero=True is supported"
        elif not (field.name == "cap_share" and value is None):
            problem = _range_problem(field.name, value)
            if problem:
                problems[field.name] = problem
    if not problems.keys() & {"floor_share", "cap_share"} and terms.cap_share is not None:
        if terms.floor_share > terms.cap_share:
            problems["floor_share"] = (
                f"floor share {terms.floor_share} is above the cap share {terms.cap_share}: no share can meet both"
            )
    return problems


def _range_problem(name: str, value) -> str | None:
    if not isinstance(value, Decimal) or not value.is_finite():
        return f"{name} must be a finite Decimal, got {value!r}"
    low, high, low_allowed, high_allowed, meaning = _RANGES[name]
    too_low = value < low if low_allowed else value <= low
    too_high = high is not None and (value > high if high_allowed else value >= high)
    if too_low or too_high:
        lower = f"{low} <= " if low_allowed else f"{low} < "
        upper = "" if high is None else (f" <= {high}" if high_allowed else f" < {high}")
        return f"{name} is {meaning}, {lower}{name}{upper}; got {value}"
    return None


def split_pool(
    *,
    total: Decimal,
    quantum: Decimal,
    contributions: Mapping[str, float],
    volumes: Mapping[str, int],
    terms: PolicyTerms,
    carried_in: Mapping[str, Decimal] | None = None,
) -> Split:
    """Split ``total`` (a positive multiple of ``quantum``) among the participants by ``terms``.

    ``contributions`` maps each participant to its contribution value (a Shapley value,
    usually a float; NaN or infinite is an error), ``volumes`` the same participants to
    their example counts (ints >= 0), ``carried_in`` some of them to amounts carried from
    the last period (on the quantum, >= 0). ValueError names what is wrong: invalid terms,
    mismatched participants, nobody who contributed, or a floor or cap that cannot be met.
    """
    problems = terms_problems(terms)
    if problems:
        raise ValueError("invalid policy terms: " + "; ".join(problems[name] for name in sorted(problems)))
    if not isinstance(total, Decimal) or not total.is_finite() or total <= 0:
        raise ValueError(f"total must be a positive Decimal, got {total!r}")
    _in_quanta(total, quantum, "total")
    carried_in = _checked_carried_in(carried_in or {}, contributions, quantum)

    # Two keys, so a tie for the last quantum is an exact half: "distributable" sorts first and takes it.
    rate = Fraction(terms.reserve_rate)
    kept = allocate(total, {"reserve": rate, "distributable": 1 - rate}, quantum=quantum)
    weights = blended_weights(contributions, volumes, Fraction(terms.blend_alpha))
    cap = None if terms.cap_share is None else Fraction(terms.cap_share)
    shares = bounded_shares(weights, Fraction(terms.floor_share), cap)
    amounts = allocate(kept["distributable"], shares, quantum=quantum)
    payouts, carried_out, released = _carry(amounts, carried_in, terms.minimum_payout, quantum)
    return Split(
        reserve=kept["reserve"], payouts=payouts, carried_out=carried_out, carried_in_released=released,
        shares=shares, weights=weights, distributable=kept["distributable"],
    )


def blended_weights(
    contributions: Mapping[str, float], volumes: Mapping[str, int], alpha: Fraction
) -> dict[str, Fraction]:
    """Each participant's ``α · contribution share + (1 − α) · volume share``, renormalised to sum 1.

    A negative contribution counts as zero. A part whose values are all zero adds nothing
    (so with α = 1 the volumes only need to be valid); ValueError when no weight is left.
    """
    if set(volumes) != set(contributions):
        raise ValueError(
            f"volumes must name the same participants as contributions: only in contributions "
            f"{sorted(set(contributions) - set(volumes))}, only in volumes {sorted(set(volumes) - set(contributions))}"
        )
    credit = {key: max(_contribution(key, value), ZERO) for key, value in contributions.items()}
    counts = {key: _volume(key, value) for key, value in volumes.items()}
    by_credit, by_volume = _proportions(credit), _proportions(counts)
    blended = {key: alpha * by_credit[key] + (1 - alpha) * by_volume[key] for key in credit}
    whole = sum(blended.values(), ZERO)
    if whole == 0:
        raise ValueError(
            "nobody contributed: every weight is zero (no positive contribution"
            + (")" if alpha == 1 else " and no data volume)")
        )
    return {key: blended[key] / whole for key in sorted(blended)}


def bounded_shares(weights: Mapping[str, Fraction], floor: Fraction, cap: Fraction | None) -> dict[str, Fraction]:
    """Shares summing to 1: each weight times one common level, held within ``[floor, cap]``.

    Only a participant with a weight above zero (a contributor) is held up to the floor; the
    others get 0. The level is where the held shares sum to 1 (the fixed point of water
    filling: the excess over the cap and the cost of the floor are spread over the free
    shares in proportion to their weights). With no floor and no cap the shares are the
    weights, normalised. ValueError when ``k · floor > 1`` or ``k · cap < 1`` for ``k``
    contributors.
    """
    whole = sum(weights.values(), ZERO)
    contributors = sorted(key for key, weight in weights.items() if weight > 0)
    if not contributors or any(weight < 0 for weight in weights.values()):
        raise ValueError("weights must be non-negative and not all zero")
    if cap is not None and floor > cap:
        raise ValueError(f"the floor share {floor} is above the cap share {cap}")
    if len(contributors) * floor > 1:
        raise ValueError(
            f"the floor cannot be met: {len(contributors)} contributors at a floor share of {_percent(floor)} "
            f"need {_percent(len(contributors) * floor)} of the distributable amount"
        )
    if cap is not None and len(contributors) * cap < 1:
        raise ValueError(
            f"the cap cannot be met: {len(contributors)} contributors at a cap share of {_percent(cap)} "
            f"can take only {_percent(len(contributors) * cap)} of the distributable amount"
        )
    normalised = [Fraction(weights[key]) / whole for key in contributors]
    level = _level(normalised, floor, cap)
    shares = {key: ZERO for key in weights}
    shares.update({key: _held(level * weight, floor, cap) for key, weight in zip(contributors, normalised)})
    return {key: shares[key] for key in sorted(shares)}


def _level(weights: list[Fraction], floor: Fraction, cap: Fraction | None) -> Fraction:
    """The least level at which ``Σ held(level · w)`` reaches 1, for weights that sum to 1.

    The sum rises with the level and is linear between the kinks where a weight leaves the
    floor (``floor / w``) or reaches the cap (``cap / w``). One sweep over the sorted kinks
    keeps the sum's pieces (how many shares sit at the floor, at the cap, and the free
    weight) and solves the linear piece where it reaches 1, in O(k log k) for k
    participants (a bisection evaluated the whole sum at each of its steps: 0.4 s at 1,000).
    """
    kinks = [(floor / weight, _FREED, weight) for weight in weights]
    if cap is not None:
        kinks += [(cap / weight, _CAPPED, weight) for weight in weights]
    kinks.sort(key=lambda kink: (kink[0], kink[1]))
    at_floor, at_cap, free, previous = len(weights), 0, ZERO, ZERO
    for level, kind, weight in kinks:
        if at_floor * floor + at_cap * (cap or ZERO) + level * free >= 1:
            return _solve(at_floor * floor + at_cap * (cap or ZERO), free, previous)
        if kind == _FREED:
            at_floor, free = at_floor - 1, free + weight
        else:
            at_cap, free = at_cap + 1, free - weight
        previous = level
    # Past the last kink nobody is held: the sum is the level (Σw = 1); with a cap every
    # share is held, k · cap >= 1, and the loop returned already.
    return _solve(at_cap * (cap or ZERO), free, previous)


_FREED, _CAPPED = 0, 1  # at equal levels a share leaves the floor before another reaches the cap


def _solve(held: Fraction, free: Fraction, lowest: Fraction) -> Fraction:
    """The level where ``held + level · free`` is 1, not below ``lowest`` (a flat piece
    that is already at 1 or above: ``lowest`` itself)."""
    return max(lowest, (1 - held) / free) if free else lowest


def _held(value: Fraction, floor: Fraction, cap: Fraction | None) -> Fraction:
    value = max(value, floor)
    return value if cap is None else min(value, cap)


def _carry(amounts, carried_in, minimum_payout, quantum):
    payouts, carried_out, released = {}, {}, {}
    for key, amount in amounts.items():
        brought = carried_in.get(key, 0)
        candidate = quanta_amount(_in_quanta(amount, quantum, key) + brought, quantum)
        if 0 < candidate < minimum_payout:
            payouts[key], carried_out[key] = quanta_amount(0, quantum), candidate
        else:
            payouts[key] = candidate
            if brought:
                released[key] = quanta_amount(brought, quantum)
    return payouts, carried_out, released


def _checked_carried_in(carried_in: Mapping[str, Decimal], contributions, quantum: Decimal) -> dict[str, int]:
    """The carried-in amounts in whole quanta; ValueError for an unknown participant or a bad amount."""
    strangers = sorted(set(carried_in) - set(contributions))
    if strangers:
        raise ValueError(f"carried-in amounts for participants not in this split: {strangers}")
    quanta = {}
    for key, amount in carried_in.items():
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
            raise ValueError(f"carried-in amount of {key!r} must be a Decimal >= 0, got {amount!r}")
        quanta[key] = _in_quanta(amount, quantum, f"carried-in amount of {key!r}")
    return quanta


def _proportions(values: Mapping[str, Fraction | int]) -> dict[str, Fraction]:
    whole = sum(values.values())
    return {key: Fraction(value, 1) / whole if whole else ZERO for key, value in values.items()}


def _contribution(key: str, value) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (Rational, Decimal, float)):
        raise ValueError(f"contribution of {key!r} must be a number, got {type(value).__name__}")
    if isinstance(value, (Decimal, float)) and not math.isfinite(value):
        raise ValueError(f"contribution of {key!r} must be finite, got {value}")
    return Fraction(value)


def _volume(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data volume of {key!r} must be a whole number of examples >= 0, got {value!r}")
    return value


def _in_quanta(amount: Decimal, quantum: Decimal, what: str) -> int:
    if not isinstance(quantum, Decimal) or not quantum.is_finite() or quantum <= 0:
        raise ValueError(f"quantum must be a positive Decimal, got {quantum!r}")
    quanta = Fraction(amount) / Fraction(quantum)
    if quanta.denominator != 1:
        raise ValueError(f"{what} {amount} is not a whole number of quanta of {quantum}")
    return int(quanta)


def _percent(share: Fraction) -> str:
    """A share as a percentage for a message, to six significant digits."""
    with localcontext() as context:
        context.prec = 6
        return f"{Decimal(share.numerator) * 100 / share.denominator:f} %"
