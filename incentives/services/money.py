"""Checking the amounts and currencies a client sends: an ISO 4217 code, and a finite
decimal below 10^15 with no more decimals than the currency's minor unit. Refusals are
InvalidInput naming the field."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from core.errors import InvalidInput
from ledger.currencies import UnknownCurrency, minor_unit

__all__ = ["amount_checked", "currency_checked"]

_CEILING = Decimal(10) ** 15


def currency_checked(currency, *, field: str = "currency") -> str:
    try:
        minor_unit(currency)
    except UnknownCurrency:
        raise InvalidInput(f"{currency!r} is not an ISO 4217 currency code (EUR, USD, JPY, ...).",
                           field=field) from None
    return currency


def amount_checked(amount, currency: str, *, zero_allowed: bool = False, field: str = "amount") -> Decimal:
    """``amount`` as a Decimal in ``currency``: positive (or, with ``zero_allowed``, zero or
    more), below 10^15, on the currency's minor unit."""
    try:
        value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise InvalidInput(f"{field} must be a decimal number, not {amount!r}.", field=field) from None
    if zero_allowed and (not value.is_finite() or value < 0 or value >= _CEILING):
        raise InvalidInput(f"{field} must be a number from 0 up to 10^15.", field=field)
    if not zero_allowed and (not value.is_finite() or value <= 0):
        raise InvalidInput(f"{field} must be a positive number.", field=field)
    if value >= _CEILING:
        raise InvalidInput(f"{field} must be below 10^15.", field=field)
    places = minor_unit(currency)
    if value != value.quantize(Decimal(1).scaleb(-places)):
        unit = "whole units" if places == 0 else f"at most {places} decimal(s)"
        raise InvalidInput(f"{currency} amounts have {unit}; {value} does not.", field=field)
    return value
