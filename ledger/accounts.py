"""Ledger account names: one chart of accounts per consortium.

An account name is ``<type>`` or ``<type>:<qualifier>``. The consortium is the entry's, so
the same name in two consortia is two accounts.

| type | qualifier | what it holds |
| --- | --- | --- |
| ``consortium_income`` | optional | money the consortium received (receipts are credited here) |
| ``revenue_pool`` | optional: the pool's reference | money set aside to be shared |
| ``reserve`` | optional | what a policy keeps back for the consortium |
| ``participant_payable`` | required: participant slug | what the consortium owes a participant |
| ``paid`` | required: participant slug | what has been paid out to a participant |

Amounts are signed: debits positive, credits negative; a transaction's postings sum to zero
per currency. A receipt of 100 is ``consortium_income -100, revenue_pool +100``.
"""

from __future__ import annotations

import re
from enum import StrEnum


class AccountType(StrEnum):
    CONSORTIUM_INCOME = "consortium_income"
    REVENUE_POOL = "revenue_pool"
    RESERVE = "reserve"
    PARTICIPANT_PAYABLE = "participant_payable"
    PAID = "paid"


PARTICIPANT_ACCOUNT_TYPES = frozenset({AccountType.PARTICIPANT_PAYABLE, AccountType.PAID})

_QUALIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class InvalidAccount(ValueError):
    pass


def account_name(account_type: str, qualifier: str | None = None) -> str:
    """Build an account name, e.g. ``account_name("participant_payable", "alpha")``."""
    name = f"{account_type}:{qualifier}" if qualifier else str(account_type)
    account_parse(name)
    return name


def account_parse(name: str) -> tuple[AccountType, str | None]:
    """``(type, qualifier)`` of an account name; InvalidAccount says what is wrong."""
    if not isinstance(name, str):
        raise InvalidAccount(f"an account name is a string, not {type(name).__name__}")
    type_text, _, qualifier = name.partition(":")
    try:
        account_type = AccountType(type_text)
    except ValueError:
        known = ", ".join(t.value for t in AccountType)
        raise InvalidAccount(f"unknown account type {type_text!r} in {name!r}; expected one of {known}") from None
    if qualifier and not _QUALIFIER.match(qualifier):
        raise InvalidAccount(f"{name!r}: a qualifier is 1-64 letters, digits, '.', '_' or '-'")
    if ":" in name and not qualifier:
        raise InvalidAccount(f"{name!r}: empty qualifier after ':'")
    if account_type in PARTICIPANT_ACCOUNT_TYPES and not qualifier:
        raise InvalidAccount(f"{name!r}: a {account_type} account names its participant, e.g. {account_type}:alpha")
    return account_type, qualifier or None


def account_participant(name: str) -> str | None:
    """The participant slug a participant account belongs to, else None."""
    account_type, qualifier = account_parse(name)
    return qualifier if account_type in PARTICIPANT_ACCOUNT_TYPES else None


def participant_accounts(slug: str) -> list[str]:
    """The accounts that belong to participant ``slug``."""
    return [f"{account_type}:{slug}" for account_type in sorted(PARTICIPANT_ACCOUNT_TYPES)]
