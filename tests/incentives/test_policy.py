"""``incentives.policy``: reserve, weights, floor and cap, amounts and carry, all exact.

The tests named ``test_the_docs_example_...`` recompute the tables in docs/settlement.md:
change one and the other must change with it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from incentives.policy import PolicyTerms, blended_weights, bounded_shares, split_pool, terms_problems

CENT = Decimal("0.01")
ZERO = Fraction(0)
ALDER, BIRCH, CEDAR, DOGWOOD = "alder-clinic", "birch-lab", "cedar-hospital", "dogwood-care"


def split(total, contributions, volumes=None, carried_in=None, quantum=CENT, **terms):
    return split_pool(
        total=Decimal(total), quantum=quantum, contributions=contributions,
        volumes=volumes if volumes is not None else dict.fromkeys(contributions, 0),
        terms=PolicyTerms(**terms), carried_in=carried_in,
    )


def euros(**amounts):
    return {key.replace("_", "-"): Decimal(amount) for key, amount in amounts.items()}


def named(**values):
    return {key.replace("_", "-"): value for key, value in values.items()}


# The worked examples of docs/settlement.md, "Allocation policies".


def test_the_docs_example_of_a_negative_contribution_counted_as_zero():
    result = split("1000.00", {ALDER: 0.375, BIRCH: 0.25, CEDAR: -0.125, DOGWOOD: 0.125})
    assert result.reserve == Decimal("0.00") and result.distributable == Decimal("1000.00")
    assert result.shares == named(alder_clinic=Fraction(1, 2), birch_lab=Fraction(1, 3), cedar_hospital=0,
                                  dogwood_care=Fraction(1, 6))
    assert result.payouts == euros(alder_clinic="500.00", birch_lab="333.33", cedar_hospital="0.00",
                                   dogwood_care="166.67")


def test_the_docs_example_of_a_reserve_rounded_to_the_nearest_cent_with_the_half_cent_to_the_participants():
    result = split("1000.10", {ALDER: 0.5, BIRCH: 0.25, CEDAR: 0.25}, reserve_rate=Decimal("0.05"))
    assert result.reserve == Decimal("50.00")  # 5 % of 1,000.10 is 50.005
    assert result.distributable == Decimal("950.10")
    # 237.525 each for birch and cedar: the last cent to the participant that sorts first.
    assert result.payouts == euros(alder_clinic="475.05", birch_lab="237.53", cedar_hospital="237.52")


def test_the_docs_example_of_a_floor_funded_from_the_others_in_proportion_to_their_weights():
    result = split("1000.00", {ALDER: 0.5, BIRCH: 0.4375, CEDAR: 0.0625, DOGWOOD: -0.125},
                   floor_share=Decimal("0.10"))
    assert result.weights == named(alder_clinic=Fraction(1, 2), birch_lab=Fraction(7, 16),
                                   cedar_hospital=Fraction(1, 16), dogwood_care=0)
    assert result.shares == named(alder_clinic=Fraction(48, 100), birch_lab=Fraction(42, 100),
                                  cedar_hospital=Fraction(10, 100), dogwood_care=0)
    assert result.payouts == euros(alder_clinic="480.00", birch_lab="420.00", cedar_hospital="100.00",
                                   dogwood_care="0.00")


def test_the_docs_example_of_a_cap_with_the_excess_redistributed_in_proportion_to_the_others_weights():
    result = split("1000.00", {ALDER: 0.625, BIRCH: 0.25, CEDAR: 0.125}, cap_share=Decimal("0.50"))
    assert result.shares == named(alder_clinic=Fraction(1, 2), birch_lab=Fraction(1, 3), cedar_hospital=Fraction(1, 6))
    assert result.payouts == euros(alder_clinic="500.00", birch_lab="333.33", cedar_hospital="166.67")


def test_the_docs_example_of_a_blend_of_contribution_and_data_volume():
    result = split("1000.00", {ALDER: 0.5, BIRCH: 0.25, CEDAR: 0.25}, {ALDER: 1000, BIRCH: 1000, CEDAR: 2000},
                   blend_alpha=Decimal("0.5"))
    assert result.weights == named(alder_clinic=Fraction(3, 8), birch_lab=Fraction(1, 4), cedar_hospital=Fraction(3, 8))
    assert result.payouts == euros(alder_clinic="375.00", birch_lab="250.00", cedar_hospital="375.00")


def test_the_docs_example_of_a_minimum_payout_carried_to_the_next_period_and_then_paid():
    contributions = {ALDER: 0.5, BIRCH: 0.46875, CEDAR: 0.03125}
    first = split("1000.00", contributions, minimum_payout=Decimal("50.00"))
    assert first.payouts == euros(alder_clinic="500.00", birch_lab="468.75", cedar_hospital="0.00")
    assert first.carried_out == euros(cedar_hospital="31.25")
    second = split("600.00", contributions, carried_in=first.carried_out, minimum_payout=Decimal("50.00"))
    assert second.payouts == euros(alder_clinic="300.00", birch_lab="281.25", cedar_hospital="50.00")
    assert second.carried_out == {}
    assert second.carried_in_released == euros(cedar_hospital="31.25")


# Weights, floor and cap.


def test_with_no_terms_the_pool_is_split_by_contribution_alone_and_volumes_may_all_be_zero():
    result = split("90.00", {"a": 2.0, "b": 1.0})
    assert result.weights == result.shares == {"a": Fraction(2, 3), "b": Fraction(1, 3)}
    assert result.payouts == {"a": Decimal("60.00"), "b": Decimal("30.00")}


def test_a_float_contribution_counts_as_its_exact_binary_value():
    result = split("1.00", {"a": 0.1, "b": 0.3})
    assert result.weights["a"] == Fraction(0.1) / (Fraction(0.1) + Fraction(0.3))
    assert result.weights["a"] != Fraction(1, 4)


def test_a_cap_that_pushes_another_over_it_caps_that_one_too():
    assert bounded_shares({"a": Fraction(6, 10), "b": Fraction(3, 10), "c": Fraction(1, 10)},
                          ZERO, Fraction(35, 100)) == {"a": Fraction(35, 100), "b": Fraction(35, 100), "c": Fraction(3, 10)}


def test_a_floor_and_a_cap_together_hold_the_smallest_up_and_the_largest_down():
    weights = {"a": Fraction(70, 100), "b": Fraction(20, 100), "c": Fraction(5, 100), "d": Fraction(5, 100)}
    assert bounded_shares(weights, Fraction(1, 10), Fraction(1, 2)) == {
        "a": Fraction(1, 2), "b": Fraction(3, 10), "c": Fraction(1, 10), "d": Fraction(1, 10),
    }


def test_a_floor_that_takes_everything_gives_every_contributor_the_floor():
    assert bounded_shares({"a": 9, "b": 1, "c": 0}, Fraction(1, 2), None) == {
        "a": Fraction(1, 2), "b": Fraction(1, 2), "c": 0,
    }


def test_a_participant_with_data_but_no_positive_contribution_gets_a_share_when_alpha_is_below_one():
    weights = blended_weights({"a": 1.0, "b": -3.0}, {"a": 100, "b": 300}, Fraction(1, 2))
    assert weights == {"a": Fraction(5, 8), "b": Fraction(3, 8)}


def test_when_no_contribution_is_positive_the_blend_falls_back_on_the_data_volume():
    assert blended_weights({"a": 0.0, "b": -1.0}, {"a": 1, "b": 3}, Fraction(9, 10)) == {
        "a": Fraction(1, 4), "b": Fraction(3, 4),
    }


def test_when_no_data_volume_is_given_the_blend_falls_back_on_the_contribution():
    assert blended_weights({"a": 1.0, "b": 3.0}, {"a": 0, "b": 0}, Fraction(1, 10)) == {
        "a": Fraction(1, 4), "b": Fraction(3, 4),
    }


@pytest.mark.parametrize(("contributions", "volumes", "alpha"), [
    ({"a": 0.0, "b": -1.0}, {"a": 5, "b": 5}, Fraction(1)),
    ({"a": 0.0, "b": -1.0}, {"a": 0, "b": 0}, Fraction(1, 2)),
    ({"a": 1.0}, {"a": 0}, Fraction(0)),
    ({}, {}, Fraction(1)),
])
def test_nobody_contributed_is_an_error(contributions, volumes, alpha):
    with pytest.raises(ValueError, match="nobody contributed"):
        blended_weights(contributions, volumes, alpha)


@pytest.mark.parametrize(("terms", "message"), [
    ({"floor_share": Decimal("0.4")}, r"the floor cannot be met: 3 contributors at a floor share of 40 % need 120 %"),
    ({"cap_share": Decimal("0.3")}, r"the cap cannot be met: 3 contributors at a cap share of 30 % can take only 90 %"),
])
def test_a_floor_or_cap_that_cannot_be_met_is_an_error_saying_why(terms, message):
    with pytest.raises(ValueError, match=message):
        split("10.00", {"a": 1.0, "b": 1.0, "c": 1.0, "d": -1.0}, **terms)


# Carry.


def test_a_zero_amount_is_neither_paid_nor_carried():
    result = split("10.00", {"a": 1.0, "b": 0.0}, minimum_payout=Decimal("5.00"))
    assert result.payouts == {"a": Decimal("10.00"), "b": Decimal("0.00")}
    assert result.carried_out == {} and result.carried_in_released == {}


def test_a_carried_amount_is_carried_again_while_the_total_stays_under_the_minimum():
    result = split("10.00", {"a": 1.0, "b": 0.0}, carried_in={"b": Decimal("2.00")}, minimum_payout=Decimal("5.00"))
    assert result.payouts == {"a": Decimal("10.00"), "b": Decimal("0.00")}
    assert result.carried_out == {"b": Decimal("2.00")} and result.carried_in_released == {}


def test_a_carried_amount_is_released_with_the_new_amount_even_without_a_minimum():
    result = split("10.00", {"a": 1.0, "b": 1.0}, carried_in={"a": Decimal("0.5"), "b": Decimal("0")})
    assert result.payouts == {"a": Decimal("5.50"), "b": Decimal("5.00")}
    assert result.carried_in_released == {"a": Decimal("0.50")}


def test_amounts_keep_the_quantums_exponent():
    result = split("3", {"a": 1.0, "b": 2.0}, quantum=Decimal("1"), carried_in={"a": Decimal("1.00")},
                   reserve_rate=Decimal("0.5"))
    assert [str(amount) for amount in (result.reserve, result.distributable, *result.payouts.values())] == [
        "1", "2", "2", "1",
    ]


# Bad terms and bad arguments.


def test_the_default_terms_are_valid():
    assert terms_problems(PolicyTerms()) == {}
    assert terms_problems(PolicyTerms(Decimal("0.99"), Decimal("1"), Decimal("1"), Decimal("0"), Decimal("12.5"))) == {}


@pytest.mark.parametrize(("terms", "field", "message"), [
    ({"reserve_rate": Decimal("1")}, "reserve_rate", "0 <= reserve_rate < 1; got 1"),
    ({"reserve_rate": Decimal("-0.01")}, "reserve_rate", "0 <= reserve_rate < 1; got -0.01"),
    ({"floor_share": Decimal("1.5")}, "floor_share", "0 <= floor_share <= 1; got 1.5"),
    ({"cap_share": Decimal("0")}, "cap_share", "0 < cap_share <= 1; got 0"),
    ({"blend_alpha": Decimal("2")}, "blend_alpha", "0 <= blend_alpha <= 1; got 2"),
    ({"minimum_payout": Decimal("-1")}, "minimum_payout", "0 <= minimum_payout; got -1"),
    ({"reserve_rate": 0.1}, "reserve_rate", "must be a finite Decimal, got 0.1"),
    ({"minimum_payout": Decimal("NaN")}, "minimum_payout", "must be a finite Decimal"),
    ({"negative_as_zero": False}, "negative_as_zero", "only negative_as_zero=True is supported"),
    ({"floor_share": Decimal("0.5"), "cap_share": Decimal("0.4")}, "floor_share", "above the cap share"),
])
def test_a_term_out_of_range_is_a_problem_named_by_its_field(terms, field, message):
    problems = terms_problems(PolicyTerms(**terms))
    assert list(problems) == [field]
    assert message in problems[field]


def test_every_problem_is_reported_at_once():
    terms = PolicyTerms(reserve_rate=Decimal("2"), cap_share=Decimal("2"), negative_as_zero=False)
    assert set(terms_problems(terms)) == {"reserve_rate", "cap_share", "negative_as_zero"}


@pytest.mark.parametrize(("arguments", "message"), [
    ({"total": Decimal("0.00")}, "total must be a positive Decimal"),
    ({"total": Decimal("-1.00")}, "total must be a positive Decimal"),
    ({"total": 1.0}, "total must be a positive Decimal"),
    ({"total": Decimal("1.005")}, "total 1.005 is not a whole number of quanta of 0.01"),
    ({"quantum": Decimal("0")}, "quantum must be a positive Decimal"),
    ({"terms": PolicyTerms(reserve_rate=Decimal("1"))}, "invalid policy terms: reserve_rate"),
    ({"volumes": {"a": 1}}, r"volumes must name the same participants.*only in contributions \['b'\]"),
    ({"volumes": {"a": 1, "b": 1, "c": 1}}, r"only in volumes \['c'\]"),
    ({"volumes": {"a": 1, "b": -1}}, "data volume of 'b' must be a whole number of examples >= 0"),
    ({"volumes": {"a": 1, "b": 1.0}}, "data volume of 'b' must be a whole number"),
    ({"volumes": {"a": 1, "b": True}}, "data volume of 'b' must be a whole number"),
    ({"contributions": {"a": 1.0, "b": math.nan}}, "contribution of 'b' must be finite"),
    ({"contributions": {"a": 1.0, "b": -math.inf}}, "contribution of 'b' must be finite"),
    ({"contributions": {"a": 1.0, "b": "2"}}, "contribution of 'b' must be a number"),
    ({"carried_in": {"c": Decimal("1.00")}}, r"carried-in amounts for participants not in this split: \['c'\]"),
    ({"carried_in": {"a": Decimal("-1.00")}}, "carried-in amount of 'a' must be a Decimal >= 0"),
    ({"carried_in": {"a": 1}}, "carried-in amount of 'a' must be a Decimal >= 0"),
    ({"carried_in": {"a": Decimal("0.001")}}, "carried-in amount of 'a' 0.001 is not a whole number of quanta"),
])
def test_bad_arguments_raise_value_error_saying_what_is_wrong(arguments, message):
    defaults = {"total": Decimal("10.00"), "quantum": CENT, "contributions": {"a": 1.0, "b": 2.0},
                "volumes": {"a": 0, "b": 0}, "terms": PolicyTerms()}
    with pytest.raises(ValueError, match=message):
        split_pool(**(defaults | arguments))


# Properties.

KEYS = st.text(alphabet="abcdefgh", min_size=1, max_size=2)
CONTRIBUTIONS = st.dictionaries(
    KEYS, st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=12,
)
WEIGHTS = st.dictionaries(KEYS, st.fractions(min_value=0, max_value=100, max_denominator=1000), min_size=1,
                          max_size=12).filter(lambda weights: any(weights.values()))


@st.composite
def bounds(draw, contributors: int):
    """A floor and a cap (or None) that ``contributors`` can meet, on four decimal places."""
    floor = Decimal(draw(st.integers(0, 10**4 // contributors))).scaleb(-4)
    cap = draw(st.none() | st.integers(-(-(10**4) // contributors), 10**4).map(lambda units: Decimal(units).scaleb(-4)))
    return floor, cap


@given(weights=WEIGHTS, data=st.data())
def test_bounded_shares_sum_to_one_within_the_bounds_in_the_weights_order(weights, data):
    contributors = [key for key, weight in weights.items() if weight > 0]
    floor, cap = map(lambda bound: None if bound is None else Fraction(bound), data.draw(bounds(len(contributors))))
    shares = bounded_shares(weights, floor, cap)
    assert sum(shares.values()) == 1
    assert all(shares[key] >= floor for key in contributors)
    assert cap is None or all(share <= cap for share in shares.values())
    assert all(shares[key] == 0 for key in weights if weights[key] == 0)
    for one in weights:
        for other in weights:
            if weights[one] >= weights[other]:
                assert shares[one] >= shares[other]


@given(weights=WEIGHTS, data=st.data())
def test_every_share_held_by_neither_bound_is_its_weight_times_one_common_level(weights, data):
    """So what the floor and the cap move is spread over the others in proportion to their weights."""
    floor, cap = map(lambda bound: None if bound is None else Fraction(bound),
                     data.draw(bounds(sum(1 for weight in weights.values() if weight > 0))))
    shares = bounded_shares(weights, floor, cap)
    free = {key for key, share in shares.items() if weights[key] > 0 and share != floor and share != cap}
    assert len({shares[key] / weights[key] for key in free}) <= 1


@given(weights=WEIGHTS)
def test_with_no_floor_and_no_cap_the_shares_are_the_weights(weights):
    whole = sum(weights.values())
    assert bounded_shares(weights, ZERO, None) == {key: weight / whole for key, weight in weights.items()}


@st.composite
def pools(draw):
    """Arguments for ``split_pool`` that it must accept."""
    quantum = draw(st.sampled_from([CENT, Decimal("1"), Decimal("0.05")]))
    contributions = draw(CONTRIBUTIONS)
    volumes = {key: draw(st.integers(0, 10**6)) for key in contributions}
    alpha = Decimal(draw(st.integers(0, 100))).scaleb(-2)
    try:
        weights = blended_weights(contributions, volumes, Fraction(alpha))
    except ValueError:
        assume(False)
    floor, cap = draw(bounds(sum(1 for weight in weights.values() if weight > 0)))
    terms = PolicyTerms(
        reserve_rate=Decimal(draw(st.integers(0, 99))).scaleb(-2), floor_share=floor, cap_share=cap,
        blend_alpha=alpha, minimum_payout=draw(st.integers(0, 10**4)) * quantum,
    )
    carried_in = draw(st.dictionaries(st.sampled_from(sorted(contributions)), st.integers(0, 10**4).map(
        lambda units: units * quantum)))
    total = draw(st.integers(1, 10**9)) * quantum
    return {"total": total, "quantum": quantum, "contributions": contributions, "volumes": volumes, "terms": terms,
            "carried_in": carried_in}


@given(arguments=pools())
def test_reserve_payouts_and_carry_account_exactly_for_the_pool_and_what_was_carried_in(arguments):
    result = split_pool(**arguments)
    paid = sum(map(Fraction, result.payouts.values())) + sum(map(Fraction, result.carried_out.values()))
    assert Fraction(result.reserve) + paid == Fraction(arguments["total"]) + sum(
        map(Fraction, arguments["carried_in"].values()))
    assert result.reserve + result.distributable == arguments["total"]
    assert sum(result.shares.values()) == 1 == sum(result.weights.values())


@given(arguments=pools())
def test_a_payout_is_zero_or_at_least_the_minimum_and_only_amounts_under_it_are_carried(arguments):
    result = split_pool(**arguments)
    minimum = arguments["terms"].minimum_payout
    assert all(payout == 0 or payout >= minimum for payout in result.payouts.values())
    assert all(0 < amount < minimum and result.payouts[key] == 0 for key, amount in result.carried_out.items())
    assert result.carried_in_released == {key: amount for key, amount in arguments["carried_in"].items()
                                          if amount and key not in result.carried_out}


@given(arguments=pools())
def test_the_reserve_is_within_half_a_quantum_of_its_rate_of_the_pool(arguments):
    result = split_pool(**arguments)
    exact = Fraction(arguments["total"]) * Fraction(arguments["terms"].reserve_rate)
    assert abs(Fraction(result.reserve) - exact) <= Fraction(arguments["quantum"]) / 2


@given(arguments=pools(), seed=st.randoms(), factor=st.sampled_from([2.0, 1024.0]))
def test_neither_the_order_of_the_participants_nor_a_common_scale_of_the_contributions_changes_anything(
    arguments, seed, factor
):
    items = list(arguments["contributions"].items())
    seed.shuffle(items)
    scaled = {key: value * factor for key, value in items}  # a power of two, upwards: exact in binary
    assert split_pool(**(arguments | {"contributions": scaled})) == split_pool(**arguments)
