"""The display filters for valuation figures: six significant digits, shares in percent."""

from decimal import Decimal

import pytest

from core.templatetags.figures import figure, percent


@pytest.mark.parametrize(("value", "expected"), [
    (-0.016360484646525682, "-0.0163605"), ("0.005344", "0.005344"), (Decimal("1234567.891"), "1.23457e+06"),
    (0, "0"), (None, ""), ("", ""), ("not a number", ""),
])
def test_a_figure_shows_six_significant_digits(value, expected):
    assert figure(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (0.2519, "25.19 %"), ("-2.3019", "-230.19 %"), (Decimal("1"), "100.00 %"), (None, ""), ("x", ""),
])
def test_a_share_is_shown_in_percent(value, expected):
    assert percent(value) == expected
