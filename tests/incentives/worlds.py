"""Revenue pools in each state, for tests that need them ready-made (the permission matrix,
the API fuzzer)."""

from __future__ import annotations

from decimal import Decimal

from consortium.access import Principal
from incentives.services import pool_approve, pool_create, pool_issue, pool_statements_draft
from tests.factories import MembershipFactory


def pools_in_every_state(consortium, valuation_run, *, policy=None) -> dict:
    """A drafted, an approved and an issued pool resting on ``valuation_run`` (under
    ``policy``, by default the consortium's current one), drafted and approved by finance
    users of their own (so any other finance user may still approve)."""
    drafter, first, second = (Principal(user=MembershipFactory(consortium=consortium, role="finance").user)
                              for _ in range(3))
    pools = {}
    for state in ("drafted", "approved", "issued"):
        pool = pool_create(actor=drafter, consortium=consortium, reference=f"pool-{state}", period="2026-Q1",
                           amount=Decimal("1000.00"), currency="EUR", valuation_runs=[valuation_run.pk],
                           policy=policy)
        pool = pool_statements_draft(actor=drafter, pool=pool)
        if state != "drafted":
            pool_approve(actor=first, pool=pool)
            pool = pool_approve(actor=second, pool=pool)
        if state == "issued":
            pool = pool_issue(actor=first, pool=pool)
        pools[state] = pool
    return pools
