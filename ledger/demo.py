"""Demo ledger content: the demo consortium's first revenue receipt, a record and a checkpoint.

Called by ``seed_demo`` (the ``demo`` app). Idempotent: every entry carries an idempotency key derived from the
consortium, so a second run appends nothing and returns the same checkpoint.
"""

from __future__ import annotations

from decimal import Decimal

from consortium.access import Principal
from consortium.models import Consortium
from ledger.accounts import AccountType, account_name
from ledger.models import EntryKind, ReferenceType
from ledger.services import checkpoint_create, entry_append

DEMO_POOL = "demo-2026-q1"
DEMO_RECEIPT = Decimal("250000.00")
DEMO_CURRENCY = "EUR"


def ledger_demo_seed(*, consortium: Consortium, actor: Principal | str) -> None:
    """Record the first revenue receipt (consortium income -> revenue pool), the pool's
    opening as a record, and sign a checkpoint, so that verify_ledger has work on a fresh demo."""
    pool_account = account_name(AccountType.REVENUE_POOL, DEMO_POOL)
    entry_append(
        consortium=consortium,
        kind=EntryKind.TRANSACTION,
        body={"memo": "First revenue receipt from model licensing, 2026 Q1", "period": "2026-Q1"},
        postings=[
            (AccountType.CONSORTIUM_INCOME.value, -DEMO_RECEIPT, DEMO_CURRENCY),
            (pool_account, DEMO_RECEIPT, DEMO_CURRENCY),
        ],
        actor=actor,
        reference_type=ReferenceType.REVENUE_POOL,
        reference_id=DEMO_POOL,
        idempotency_key=f"demo:{consortium.slug}:receipt-1",
    )
    entry_append(
        consortium=consortium,
        kind=EntryKind.RECORD,
        body={
            "event": "revenue_pool.opened",
            "period": "2026-Q1",
            "amount": f"{DEMO_RECEIPT:f}",
            "currency": DEMO_CURRENCY,
            "policy": "default: negative values count as zero, largest-remainder split",
        },
        actor=actor,
        reference_type=ReferenceType.REVENUE_POOL,
        reference_id=DEMO_POOL,
        idempotency_key=f"demo:{consortium.slug}:pool-opened",
    )
    checkpoint_create()
