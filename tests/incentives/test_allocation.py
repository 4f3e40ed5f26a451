"""``incentives.allocation.allocate``: largest remainder on exact fractions, ties to the lower key."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives.allocation import allocate

KEYS = st.text(alphabet="abcdefghij", min_size=1, max_size=3)
WEIGHTS = st.dictionaries(KEYS, st.integers(0, 10**9), min_size=1, max_size=30).filter(lambda w: any(w.values()))
QUANTA = st.sampled_from([Decimal("0.01"), Decimal("1"), Decimal("0.001"), Decimal("0.05"), Decimal("0.0001")])


@st.composite
def totals(draw, quantum):
    return draw(st.integers(0, 10**12)) * quantum


@given(weights=WEIGHTS, data=st.data(), quantum=QUANTA)
def test_the_amounts_sum_exactly_to_the_total_each_within_one_quantum_of_its_exact_share(weights, data, quantum):
    total = data.draw(totals(quantum))
    amounts = allocate(total, weights, quantum=quantum)
    assert set(amounts) == set(weights)
    assert sum(amounts.values()) == total
    whole = sum(weights.values())
    for key, amount in amounts.items():
        exact = Fraction(total) * weights[key] / whole
        assert abs(Fraction(amount) - exact) < Fraction(quantum)
        assert Fraction(amount) % Fraction(quantum) == 0
        assert amount.as_tuple().exponent == quantum.as_tuple().exponent


@given(weights=WEIGHTS, total=st.integers(0, 10**9).map(lambda cents: Decimal(cents) / 100), seed=st.randoms())
def test_the_order_of_the_mapping_does_not_matter(weights, total, seed):
    items = list(weights.items())
    seed.shuffle(items)
    assert allocate(total, dict(items)) == allocate(total, weights)


@given(weights=WEIGHTS, total=st.integers(0, 10**9).map(lambda cents: Decimal(cents) / 100),
       factor=st.one_of(st.integers(1, 10**6), st.fractions(min_value=Fraction(1, 10**6), max_value=10**6)))
def test_scaling_every_weight_by_the_same_factor_changes_nothing(weights, total, factor):
    if factor == 0:
        return
    scaled = {key: Fraction(value) * factor for key, value in weights.items()}
    assert allocate(total, scaled) == allocate(total, weights)


@given(weights=WEIGHTS, cents=st.integers(1, 10**9))
def test_a_negative_total_is_the_positive_split_negated(weights, cents):
    total = Decimal(cents) / 100
    assert allocate(-total, weights) == {key: -amount for key, amount in allocate(total, weights).items()}


def test_a_tie_for_the_last_cent_goes_to_the_lower_key():
    assert allocate(Decimal("0.10"), {"c": 3, "a": 6, "b": 3}) == {
        "a": Decimal("0.05"), "b": Decimal("0.03"), "c": Decimal("0.02"),
    }


def test_a_quarter_million_over_seven_weights_with_eight_decimals_sums_exactly():
    weights = {
        "plant-a": Decimal("0.12345678"), "plant-b": Decimal("0.23456789"), "plant-c": Decimal("0.00000001"),
        "plant-d": Decimal("0.31415926"), "plant-e": Decimal("0.27182818"), "plant-f": Decimal("0.14142135"),
        "plant-g": Decimal("0.17320508"),
    }
    amounts = allocate(Decimal("250000.00"), weights)
    assert sum(amounts.values()) == Decimal("250000.00")
    whole = sum(weights.values())
    for key, amount in amounts.items():
        assert abs(amount - Decimal("250000.00") * weights[key] / whole) < Decimal("0.01")
    assert amounts["plant-c"] == Decimal("0.00")  # 0.0019 exact: under one cent
    assert all(amount.as_tuple().exponent == -2 for amount in amounts.values())


def test_zero_weights_get_nothing_and_float_weights_count_as_their_exact_binary_value():
    assert allocate(Decimal("1.00"), {"a": 0, "b": 1.0, "c": 0.0}) == {
        "a": Decimal("0.00"), "b": Decimal("1.00"), "c": Decimal("0.00"),
    }
    assert allocate(Decimal("1"), {"a": 0.1, "b": 0.2}, quantum=Decimal("1")) == {"a": Decimal("0"), "b": Decimal("1")}


def test_whole_units_and_other_quanta_keep_the_quantums_exponent():
    assert allocate(Decimal("1000"), {"a": 1, "b": 2}, quantum=Decimal("1")) == {"a": Decimal("333"), "b": Decimal("667")}
    assert allocate(Decimal("1.00"), {"a": 1, "b": 1, "c": 1}, quantum=Decimal("0.05")) == {
        "a": Decimal("0.35"), "b": Decimal("0.35"), "c": Decimal("0.30"),
    }


def test_a_total_beyond_the_decimal_contexts_precision_is_split_exactly():
    total = Decimal("12345678901234567890123456789012.34")
    amounts = allocate(total, {"a": 1, "b": 2, "c": 4})
    assert sum(map(Fraction, amounts.values())) == Fraction(total)  # (Decimal's own sum would round)
    assert amounts["a"] == Decimal("1763668414462081127160493827001.76")


@pytest.mark.parametrize(("total", "weights", "quantum", "message"), [
    (Decimal("1.00"), {"a": -1, "b": 2}, Decimal("0.01"), "weight of 'a' is negative"),
    (Decimal("1.00"), {"a": 0, "b": 0}, Decimal("0.01"), "all zero"),
    (Decimal("1.00"), {}, Decimal("0.01"), "all zero"),
    (Decimal("1.005"), {"a": 1}, Decimal("0.01"), "not a whole number of quanta"),
    (Decimal("1.00"), {"a": float("nan")}, Decimal("0.01"), "must be finite"),
    (Decimal("1.00"), {"a": float("inf")}, Decimal("0.01"), "must be finite"),
    (Decimal("1.00"), {"a": Decimal("NaN")}, Decimal("0.01"), "must be finite"),
    (Decimal("1.00"), {"a": "1"}, Decimal("0.01"), "must be a number"),
    (Decimal("1.00"), {"a": True}, Decimal("0.01"), "must be a number"),
    (Decimal("1.00"), {"a": 1}, Decimal("0"), "quantum must be a positive Decimal"),
    (Decimal("1.00"), {"a": 1}, 0.01, "quantum must be a positive Decimal"),
    (1.0, {"a": 1}, Decimal("0.01"), "total must be a finite Decimal"),
    (Decimal("Infinity"), {"a": 1}, Decimal("0.01"), "total must be a finite Decimal"),
])
def test_bad_arguments_raise_value_error_saying_what_is_wrong(total, weights, quantum, message):
    with pytest.raises(ValueError, match=message):
        allocate(total, weights, quantum=quantum)
