"""How pages write valuation figures for reading: six significant digits, shares as
percentages. Downloads (CSV, JSON, PDF statements) keep the exact figures."""

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()


def _number(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def figure(value) -> str:
    """A contribution value, error or bound: six significant digits ('' for none)."""
    number = _number(value)
    return "" if number is None else format(float(number), ".6g")


@register.filter
def percent(value) -> str:
    """A share given as a fraction of one (0.2519) as a percentage: '25.19 %'."""
    number = _number(value)
    return "" if number is None else f"{number * 100:.2f} %"
