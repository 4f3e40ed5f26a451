"""Demo settlement: once the demo's valuation has succeeded, a revenue pool of
EUR 250,000.00 for 2026 Q1, drafted by the operator command, approved by the two demo
finance users, issued, and one open dispute, filed by the factory that got the least.

Called by ``seed_demo`` after the transaction that starts the valuation has committed
(the valuation runs then, in-process without a broker); idempotent: each step is taken
only if the pool has not got there yet.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model

from consortium.access import Principal
from consortium.demo import STAFF_LOGINS
from consortium.models import Consortium, Role
from incentives.models import Dispute, RevenuePool
from incentives.services import dispute_file, pool_approve, pool_create, pool_issue, pool_statements_draft
from valuation.models import ValuationRun

DEMO_POOL_REFERENCE = "2026-q1"
DEMO_POOL_AMOUNT = Decimal("250000.00")


def settlement_demo_seed(*, consortium: Consortium, valuation_run: ValuationRun, actor: Principal) -> RevenuePool | None:
    """The demo pool, taken as far as issued with one open dispute; None while the
    valuation has not succeeded (with a broker, the workers may still be at it)."""
    if valuation_run.status != ValuationRun.Status.SUCCEEDED:
        return None
    pool = consortium.revenue_pools.filter(reference=DEMO_POOL_REFERENCE).first() or pool_create(
        actor=actor, consortium=consortium, reference=DEMO_POOL_REFERENCE, period="2026-Q1",
        amount=DEMO_POOL_AMOUNT, currency="EUR", valuation_runs=[valuation_run.pk],
    )
    if pool.status == RevenuePool.Status.DRAFT:
        pool = pool_statements_draft(actor=actor, pool=pool)
    finance = [_person(email) for email, role in STAFF_LOGINS if role == Role.FINANCE]
    for approver in finance:
        if pool.status == RevenuePool.Status.DRAFTED and not pool.approvals.filter(user=approver.user).exists():
            pool = pool_approve(actor=approver, pool=pool)
    if pool.status == RevenuePool.Status.APPROVED:
        pool = pool_issue(actor=finance[0], pool=pool)
    if not Dispute.objects.filter(statement__pool=pool).exists():
        least = pool.statements.select_related("participant").order_by("amount", "participant__slug").first()
        dispute_file(actor=_person(f"{least.participant.slug}@demo.test"), statement=least, line="contribution",
                     reason="Our maintenance logs were relabelled in March; we ask for an exact re-valuation.")
    return pool


def _person(email: str) -> Principal:
    return Principal(user=get_user_model().objects.get(username=email))
