"""Ledger test fixtures: helpers to append.

The signing key (``TEST_LEDGER_SIGNING_KEY``) and the flush permit are set for the whole
suite in tests/conftest.py.
"""

import base64
from decimal import Decimal

import pytest

from tests.conftest import TEST_LEDGER_SIGNING_KEY

TEST_SEED = base64.b64decode(TEST_LEDGER_SIGNING_KEY)


@pytest.fixture
def receipt():
    """``receipt(consortium, amount="100.00")`` appends a balanced income -> pool transaction."""
    from ledger.services import entry_append

    def make(consortium, amount="100.00", currency="EUR", **overrides):
        value = Decimal(amount)
        arguments = {
            "consortium": consortium,
            "kind": "transaction",
            "body": {"memo": "receipt"},
            "postings": [("consortium_income", -value, currency), ("revenue_pool", value, currency)],
            "actor": "system:test",
            "reference_type": "revenue_pool",
            "reference_id": "pool-1",
        }
        arguments.update(overrides)
        return entry_append(**arguments)

    return make
