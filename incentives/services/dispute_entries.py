"""What deciding a dispute posts: the decision record, and for an upheld dispute the revised
statement (version 2) with the reversal of version 1's entry and version 2's own entry.

Called by ``incentives.services.disputes.dispute_decide`` inside its transaction, with the
dispute's and the pool's rows locked; these lock the disputed statement's row, then append
(the ledger head last). Every entry names only the disputing participant, and the
difference between the revised and the original amount is taken from (or given back to)
the ``reserve`` account, so every entry balances and the pool's own account stays as
issuing left it.
"""

from __future__ import annotations

import math
from decimal import Decimal

from django.utils import timezone

from consortium.access import Principal
from core.errors import Conflict
from incentives.models import Dispute, RevenuePool, Statement
from incentives.services.issuing import statement_ledger_body, statement_postings
from ledger.services import entry_append
from valuation.models import ParticipantScore, ValuationRun
from valuation.services.valuation_work import Z95

__all__ = ["post_decision", "uphold"]


def uphold(actor: Principal, dispute: Dispute, pool: RevenuePool, amount: Decimal) -> None:
    original = (Statement.objects.select_for_update(of=("self",)).select_related("participant", "pool")
                .get(pk=dispute.statement_id))
    if original.status != Statement.Status.ISSUED:
        raise Conflict("This statement version was already revised by another decision; reject this dispute or "
                       "have the participant dispute the current version.")
    difference = amount - original.amount
    revised = _revised_statement(dispute, original, amount, difference)
    dispute.reversal_entry_seq = _post_reversal(actor, dispute, pool, original).seq
    entry = _post_correction(actor, dispute, pool, revised, difference)
    now = timezone.now()
    original.status = Statement.Status.SUPERSEDED
    original.save(update_fields=["status"])
    revised.ledger_entry_seq, revised.status, revised.issued_at = entry.seq, Statement.Status.ISSUED, now
    revised.save(update_fields=["ledger_entry_seq", "status", "issued_at"])
    dispute.correction_entry_seq, dispute.adjustment, dispute.revised_statement = entry.seq, difference, revised


def _revised_statement(dispute: Dispute, original: Statement, amount: Decimal, difference: Decimal) -> Statement:
    """Version 2: version 1's figures with the revised amount (the allocation moves by the
    same difference; carried amounts stay) and, after a re-valuation, its figures in place
    of the redone run's."""
    figures = _revalued_figures(dispute, original)
    return Statement.objects.create(
        pool=original.pool, participant=original.participant, version=original.version + 1, supersedes=original,
        status=Statement.Status.DRAFT, amount=amount, allocated=original.allocated + difference,
        carried_in=original.carried_in, carried_out=original.carried_out, share=original.share,
        data_volume=original.data_volume, **figures,
    )


def _revalued_figures(dispute: Dispute, original: Statement) -> dict:
    same = {"contribution": original.contribution, "contribution_stderr": original.contribution_stderr,
            "ci_low": original.ci_low, "ci_high": original.ci_high, "methods": list(original.methods),
            "per_round": dict(original.per_round)}
    run = dispute.revaluation
    if run is None or run.status != ValuationRun.Status.SUCCEEDED:
        return same
    scores = {s.valuation_run_id: s for s in ParticipantScore.objects.filter(
        valuation_run__in=[dispute.revalued_run_id, run.pk], participant=original.participant)}
    old, new = scores.get(dispute.revalued_run_id), scores.get(run.pk)
    if new is None:
        return same
    value = original.contribution - (old.value if old else 0.0) + new.value
    variance = max(original.contribution_stderr**2 - (old.stderr**2 if old else 0.0), 0.0) + new.stderr**2
    stderr = math.sqrt(variance)
    prefix = f"{dispute.revalued_run_id}:"
    per_round = {k: v for k, v in original.per_round.items() if not k.startswith(prefix)}
    per_round.update({f"{run.pk}:{t}": v for t, v in new.per_round.items()})
    methods = sorted({*original.methods, run.method})
    return {"contribution": value, "contribution_stderr": stderr, "ci_low": value - Z95 * stderr,
            "ci_high": value + Z95 * stderr, "methods": methods, "per_round": per_round}


def _entry_common(actor: Principal, dispute: Dispute, pool: RevenuePool) -> dict:
    return {"consortium": pool.consortium, "actor": actor, "participants": [dispute.participant.slug]}


def _post_reversal(actor: Principal, dispute: Dispute, pool: RevenuePool, original: Statement):
    """The exact negation of version 1's entry (a record, as version 1's was, if no money moved)."""
    postings = [(account, -amount, currency) for account, amount, currency in statement_postings(pool, original)]
    return entry_append(
        **_entry_common(actor, dispute, pool), kind="transaction" if postings else "record",
        reference_type="statement", reference_id=str(original.pk), idempotency_key=f"dispute:{dispute.pk}:reversal",
        body={"type": "statement_reversal", "statement": str(original.pk), "version": str(original.version),
              "reverses_entry": str(original.ledger_entry_seq), "dispute": str(dispute.pk)},
        postings=postings or None,
    )


def _post_correction(actor: Principal, dispute: Dispute, pool: RevenuePool, revised: Statement, difference: Decimal):
    """Version 2's entry: its own postings, the difference taken from (or given back to) the reserve."""
    lines: dict[str, Decimal] = {}
    for account, amount, _ in statement_postings(pool, revised):
        lines[account] = lines.get(account, Decimal(0)) + amount
    pool_account = f"revenue_pool:{pool.reference}"
    lines[pool_account] = lines.get(pool_account, Decimal(0)) + difference
    lines["reserve"] = lines.get("reserve", Decimal(0)) - difference
    postings = [(account, amount, pool.currency) for account, amount in lines.items() if amount]
    return entry_append(
        **_entry_common(actor, dispute, pool), kind="transaction" if postings else "record",
        reference_type="statement", reference_id=str(revised.pk), idempotency_key=f"statement:{revised.pk}",
        body={**statement_ledger_body(pool, revised), "dispute": str(dispute.pk), "reserve_funds": f"{difference:f}"},
        postings=postings or None,
    )


def post_decision(actor: Principal, dispute: Dispute, pool: RevenuePool):
    return entry_append(
        **_entry_common(actor, dispute, pool), kind="record", reference_type="dispute", reference_id=str(dispute.pk),
        idempotency_key=f"dispute:{dispute.pk}:decision",
        body={"type": "dispute_decision", "dispute": str(dispute.pk), "statement": str(dispute.statement_id),
              "participant": dispute.participant.slug, "line": dispute.line, "outcome": dispute.outcome,
              "note": dispute.decision_note, "currency": pool.currency,
              "adjustment": None if dispute.adjustment is None else f"{dispute.adjustment:f}",
              "revised_statement": None if dispute.revised_statement_id is None else str(dispute.revised_statement_id),
              "revaluation": None if dispute.revaluation_id is None else str(dispute.revaluation_id)},
    )
