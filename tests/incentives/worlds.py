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


def disputes_in_every_state(consortium, statements: dict, *, governance=None) -> dict:
    """Disputes on issued statements (``statements``: participant slug → statement; alpha
    and beta at least), filed by participant users of their own: ``open`` (alpha's amount,
    with a PDF attachment), ``reviewed`` (alpha's contribution, under review), ``rejected``
    (alpha's data volume, decided) and ``beta`` (beta's amount, open, with an attachment).
    None is upheld, so every statement stays the current, issued version."""
    from incentives.services import dispute_decide, dispute_file, dispute_review

    def filer(slug: str) -> Principal:
        participant = consortium.participants.get(slug=slug)
        return Principal(user=MembershipFactory(consortium=consortium, role="participant",
                                                participant=participant).user)

    governance = governance or Principal(user=MembershipFactory(consortium=consortium, role="governance").user)
    alpha, beta = filer("alpha"), filer("beta")
    pdf = b"%PDF-1.4 evidence"
    disputes = {
        "open": dispute_file(actor=alpha, statement=statements["alpha"], line="amount", reason="Too low.",
                             attachment=pdf, attachment_filename="evidence.pdf",
                             attachment_content_type="application/pdf"),
        "reviewed": dispute_file(actor=alpha, statement=statements["alpha"], line="contribution",
                                 reason="Round 5 is missing."),
        "rejected": dispute_file(actor=alpha, statement=statements["alpha"], line="data_volume",
                                 reason="We sent more examples."),
        "beta": dispute_file(actor=beta, statement=statements["beta"], line="amount", reason="Too low.",
                             attachment=pdf, attachment_filename="beta.pdf", attachment_content_type="application/pdf"),
    }
    dispute_review(actor=governance, dispute=disputes["reviewed"])
    dispute_review(actor=governance, dispute=disputes["rejected"])
    dispute_decide(actor=governance, dispute=disputes["rejected"], outcome="rejected", note="Counts match.")
    return disputes
