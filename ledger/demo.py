"""Demo ledger content: the announcement of the demo's revenue pool, and a signed checkpoint.

Called by ``seed_demo`` (the ``demo`` app) before the valuation runs, so that
``verify_ledger`` has an entry and a checkpoint to check on a fresh demo even while
workers are still valuing. No money moves here: issuing the pool (``incentives.demo``)
posts its funding, ``consortium_income -> revenue_pool:<reference>``, and the statements
that empty that account again; a receipt posted here as well would fund the period twice.

Idempotent: the entry carries an idempotency key derived from the consortium, so a second
run appends nothing (and the checkpoint of an unchanged tree is the one already signed).
"""

from __future__ import annotations

from decimal import Decimal

from consortium.access import Principal
from consortium.models import Consortium
from ledger.models import EntryKind, ReferenceType
from ledger.services import checkpoint_create, entry_append

# The demo's revenue pool; ``incentives.demo`` opens it with these figures (ledger sits
# below incentives, so they live here).
DEMO_POOL_REFERENCE = "2026-q1"
DEMO_POOL_PERIOD = "2026-Q1"
DEMO_POOL_AMOUNT = Decimal("250000.00")
DEMO_CURRENCY = "EUR"


def ledger_demo_seed(*, consortium: Consortium, actor: Principal | str) -> None:
    """Record that the quarter's model-licensing revenue will be shared through the demo
    pool (a record, no postings), and sign a checkpoint."""
    entry_append(
        consortium=consortium,
        kind=EntryKind.RECORD,
        body={
            "event": "revenue_pool.announced",
            "memo": "Model-licensing revenue for 2026 Q1, to be shared by contribution",
            "pool": DEMO_POOL_REFERENCE,
            "period": DEMO_POOL_PERIOD,
            "amount": f"{DEMO_POOL_AMOUNT:f}",
            "currency": DEMO_CURRENCY,
            "policy": "default: negative values count as zero, largest-remainder split",
        },
        actor=actor,
        reference_type=ReferenceType.REVENUE_POOL,
        reference_id=DEMO_POOL_REFERENCE,
        idempotency_key=f"demo:{consortium.slug}:pool-announced",
    )
    checkpoint_create()
