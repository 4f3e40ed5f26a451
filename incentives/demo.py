"""Demo settlement: once the demo's valuation has succeeded, a revenue pool of
EUR 250,000.00 for 2026 Q1, drafted by the operator command, approved by the two demo
finance users, issued, and one open dispute, filed by the factory whose maintenance logs
were mislabelled (it is paid nothing, and it says why it thinks that is wrong).

Called by ``seed_demo`` after the transaction that starts the valuation has committed
(the valuation runs then, in-process without a broker); idempotent: each step is taken
only if the pool has not got there yet.
"""

from __future__ import annotations

from consortium.access import Principal
from consortium.demo import STAFF_LOGINS, demo_principal
from consortium.models import Consortium, Role
from incentives.models import Dispute, RevenuePool
from incentives.services import dispute_file, pool_approve, pool_create, pool_issue, pool_statements_draft
from ledger.currencies import money_text
from ledger.demo import DEMO_CURRENCY, DEMO_POOL_AMOUNT, DEMO_POOL_PERIOD, DEMO_POOL_REFERENCE
from valuation.demo_consortium import FACTORIES, MISLABELLED
from valuation.models import ValuationRun

# The mislabelled factory disputes: it is paid nothing and has a story for why it should be.
DISPUTING_FACTORY = next(f.slug for f in FACTORIES if f.role == MISLABELLED)


def settlement_demo_seed(*, consortium: Consortium, valuation_run: ValuationRun, actor: Principal) -> RevenuePool | None:
    """The demo pool, taken as far as issued with one open dispute; None while the
    valuation has not succeeded (with a broker, the workers may still be at it)."""
    if valuation_run.status != ValuationRun.Status.SUCCEEDED:
        return None
    pool = consortium.revenue_pools.filter(reference=DEMO_POOL_REFERENCE).first() or pool_create(
        actor=actor, consortium=consortium, reference=DEMO_POOL_REFERENCE, period=DEMO_POOL_PERIOD,
        amount=DEMO_POOL_AMOUNT, currency=DEMO_CURRENCY, valuation_runs=[valuation_run.pk],
    )
    if pool.status == RevenuePool.Status.DRAFT:
        pool = pool_statements_draft(actor=actor, pool=pool)
    finance = [demo_principal(email) for email, role in STAFF_LOGINS if role == Role.FINANCE]
    for approver in finance:
        if pool.status == RevenuePool.Status.DRAFTED and not pool.approvals.filter(user=approver.user).exists():
            pool = pool_approve(actor=approver, pool=pool)
    if pool.status == RevenuePool.Status.APPROVED:
        pool = pool_issue(actor=finance[0], pool=pool)
    if not Dispute.objects.filter(statement__pool=pool).exists():
        statement = pool.statements.select_related("participant").get(participant__slug=DISPUTING_FACTORY)
        records = valuation_run.training_run.updates.filter(participant=statement.participant).values_list(
            "num_examples", flat=True).first()
        dispute_file(
            actor=demo_principal(f"{DISPUTING_FACTORY}@demo.test"), statement=statement, line="contribution",
            reason=(f"Our statement pays {money_text(statement.amount, pool.currency)} {pool.currency} for "
                    f"{records:,} machine records. We have since found that the migration of our maintenance "
                    "system in March scrambled part of the failure column; we ask governance to review the "
                    "contribution figure and to re-value once our corrected logs are in."),
        )
    return pool
