"""Revenue pools through their lifecycle: open, draft, four-eyes approval, issue (balanced
entries, a checkpoint, frozen statements), paid; and every refusal writes nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import Conflict, InvalidInput, NotAllowed
from incentives.models import RevenuePool, Statement
from incentives.services import (
    policy_change,
    pool_approve,
    pool_create,
    pool_issue,
    pool_mark_paid,
    pool_statements_draft,
    pool_update,
)
from ledger.models import Checkpoint, LedgerEntry

pytestmark = pytest.mark.django_db


def _open(consortium, vrun, staff, **fields):
    values = {"reference": "2026-q1", "period": "2026-Q1", "amount": Decimal("250000.00"), "currency": "EUR",
              "valuation_runs": [vrun.pk], **fields}
    return pool_create(actor=staff.principal("drafter"), consortium=consortium, **values)


def _approved(consortium, vrun, staff, **fields):
    pool = _open(consortium, vrun, staff, **fields)
    pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    pool_approve(actor=staff.principal("first"), pool=pool)
    return pool_approve(actor=staff.principal("second"), pool=pool)


def _balances(consortium) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for entry in LedgerEntry.objects.filter(consortium=consortium, kind="transaction"):
        for posting in entry.document["postings"]:
            totals[posting["account"]] = totals.get(posting["account"], Decimal(0)) + Decimal(posting["amount"])
    return {account: amount for account, amount in totals.items() if amount}


def test_a_drafted_pool_gives_every_participant_a_statement_whose_amounts_sum_to_the_pool(consortium, vrun, staff):
    pool = pool_statements_draft(actor=staff.principal("drafter"), pool=_open(consortium, vrun, staff))
    statements = list(pool.statements.select_related("participant"))
    assert pool.status == RevenuePool.Status.DRAFTED
    assert len(statements) == 5
    assert sum(s.amount for s in statements) + pool.reserve_amount == Decimal("250000.00")
    scores = {score.participant.slug: score for score in vrun.scores.select_related("participant")}
    for statement in statements:
        score = scores[statement.participant.slug]
        assert statement.contribution == score.value and statement.contribution_stderr == score.stderr
        assert statement.status == Statement.Status.DRAFT and statement.ledger_entry_seq is None
    # Nothing reaches the ledger before issuing but the default policy's record.
    assert not LedgerEntry.objects.filter(kind="transaction").exists()


def test_issuing_posts_balanced_entries_one_per_statement_and_signs_a_checkpoint(consortium, vrun, staff):
    pool = pool_issue(actor=staff.principal("first"), pool=_approved(consortium, vrun, staff))
    assert pool.status == RevenuePool.Status.ISSUED
    statements = list(pool.statements.select_related("participant"))
    assert all(s.status == Statement.Status.ISSUED and s.ledger_entry_seq is not None for s in statements)
    for statement in statements:
        entry = LedgerEntry.objects.get(seq=statement.ledger_entry_seq)
        assert entry.reference_type == "statement" and entry.reference_id == str(statement.pk)
        assert list(entry.participants.values_list("slug", flat=True)) == [statement.participant.slug]
        assert entry.document["body"]["amount"] == f"{statement.amount:f}"
    balances = _balances(consortium)
    assert balances.pop("consortium_income") == Decimal("-250000.00")
    assert sum(balances.values()) == Decimal("250000.00")
    assert f"revenue_pool:{pool.reference}" not in balances  # the pool account is emptied
    assert Checkpoint.objects.filter(tree_size=pool.checkpoint_size).exists()
    assert pool.checkpoint_size == LedgerEntry.objects.count()


def test_issuing_again_changes_nothing_and_answers_the_first_result(consortium, vrun, staff):
    first = pool_issue(actor=staff.principal("first"), pool=_approved(consortium, vrun, staff))
    entries = LedgerEntry.objects.count()
    again = pool_issue(actor=staff.principal("second"), pool=first)
    assert LedgerEntry.objects.count() == entries
    assert (again.status, again.issued_at, again.checkpoint_size) == (first.status, first.issued_at,
                                                                      first.checkpoint_size)


def test_an_issued_pool_can_never_be_changed_or_drafted_again(consortium, vrun, staff):
    pool = pool_issue(actor=staff.principal("first"), pool=_approved(consortium, vrun, staff))
    with pytest.raises(Conflict, match="can no longer be changed"):
        pool_update(actor=staff.principal("drafter"), pool=pool, amount=Decimal("1.00"))
    with pytest.raises(Conflict, match="statements are final"):
        pool_statements_draft(actor=staff.principal("drafter"), pool=pool)


def test_four_eyes_refuses_the_drafter_a_second_approval_by_the_same_user_and_a_machine_key(consortium, vrun, staff):
    from consortium.access import Principal
    from tests.factories import ApiKeyFactory

    pool = _open(consortium, vrun, staff)
    with pytest.raises(Conflict, match="Draft the pool's statements"):
        pool_approve(actor=staff.principal("first"), pool=pool)
    pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    with pytest.raises(NotAllowed, match="you drafted these statements"):
        pool_approve(actor=staff.principal("drafter"), pool=pool)
    pool_approve(actor=staff.principal("first"), pool=pool)
    with pytest.raises(Conflict, match="already approved"):
        pool_approve(actor=staff.principal("first"), pool=pool)
    with pytest.raises(NotAllowed, match="API key cannot approve"):
        pool_approve(actor=Principal(api_key=ApiKeyFactory(consortium=consortium, scopes=["read"])), pool=pool)
    with pytest.raises(Conflict, match="takes 2 approvals"):
        pool_issue(actor=staff.principal("first"), pool=pool)
    pool.refresh_from_db()
    assert pool.status == RevenuePool.Status.DRAFTED and pool.approvals.count() == 1


def test_drafting_again_drops_the_approvals_so_changed_statements_are_approved_anew(consortium, vrun, staff):
    pool = _open(consortium, vrun, staff)
    pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    pool_approve(actor=staff.principal("first"), pool=pool)
    pool = pool_update(actor=staff.principal("drafter"), pool=pool, amount=Decimal("1000.00"))
    assert pool.status == RevenuePool.Status.DRAFT and not pool.approvals.exists() and not pool.statements.exists()
    pool = pool_statements_draft(actor=staff.principal("second"), pool=pool)
    assert sum(s.amount for s in pool.statements.all()) + pool.reserve_amount == Decimal("1000.00")


def test_marking_paid_moves_every_payable_to_paid_with_its_reference(consortium, vrun, staff):
    pool = pool_issue(actor=staff.principal("first"), pool=_approved(consortium, vrun, staff))
    pool = pool_mark_paid(actor=staff.principal("first"), pool=pool, payment_reference="SEPA-2026-04-01",
                          references={"alpha": "SEPA-ALPHA-1"})
    assert pool.status == RevenuePool.Status.PAID
    balances = _balances(consortium)
    assert not [account for account in balances if account.startswith("participant_payable:")]
    paid = {entry.body["statement"]: entry.body["payment_reference"]
            for entry in LedgerEntry.objects.filter(reference_type="statement") if entry.body["type"] == "payment"}
    alpha = pool.statements.get(participant__slug="alpha")
    assert paid[str(alpha.pk)] == "SEPA-ALPHA-1"
    assert set(paid.values()) <= {"SEPA-ALPHA-1", "SEPA-2026-04-01"}
    assert pool_mark_paid(actor=staff.principal("first"), pool=pool, payment_reference="again").paid_at == pool.paid_at


def test_a_reserve_and_a_minimum_payout_carry_small_amounts_to_the_next_pool(consortium, vrun, staff):
    policy_change(actor=staff.principal("governance"), consortium=consortium, reserve_rate=Decimal("0.1"),
                  minimum_payout=Decimal("40000"), note="Keep a tenth; no transfers under 40k.")
    first = pool_issue(actor=staff.principal("first"), pool=_approved(consortium, vrun, staff))
    assert first.reserve_amount == Decimal("25000.00")
    carried = {s.participant.slug: s.carried_out for s in first.statements.select_related("participant")
               if s.carried_out}
    assert carried, "no participant fell under the minimum payout"
    second = pool_issue(actor=staff.principal("first"),
                        pool=_approved(consortium, vrun, staff, reference="2026-q2", period="2026-Q2"))
    released = {s.participant.slug: s.carried_in for s in second.statements.select_related("participant")
                if s.carried_in}
    assert released == carried
    balances = _balances(consortium)
    assert balances["reserve"] == Decimal("50000.00")
    still = sum(s.carried_out for s in second.statements.all())
    assert balances.get("revenue_pool:carryover", Decimal(0)) == still


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"amount": Decimal("10.005")}, "amount", "at most 2 decimal"),
    ({"amount": Decimal("0")}, "amount", "positive"),
    ({"amount": Decimal("-5.00")}, "amount", "positive"),
    ({"currency": "XYZ"}, "currency", "ISO 4217"),
    ({"currency": "JPY", "amount": Decimal("100.50")}, "amount", "JPY amounts have whole units"),
    ({"valuation_runs": []}, "valuation_runs", "at least one"),
    ({"valuation_runs": ["00000000-0000-0000-0000-000000000000"]}, "valuation_runs", "No valuation run"),
    ({"valuation_runs": ["not-a-uuid"]}, "valuation_runs", "not a valuation run id"),
])
def test_bad_pools_are_refused_naming_the_field_and_nothing_is_written(consortium, vrun, staff, fields, field,
                                                                       message):
    with pytest.raises(InvalidInput, match=message) as refused:
        _open(consortium, vrun, staff, **fields)
    assert refused.value.field == field
    assert not RevenuePool.objects.exists()


def test_a_pool_cannot_rest_on_a_failed_run_or_reuse_a_reference(consortium, vrun, staff):
    from valuation.models import ValuationRun

    _open(consortium, vrun, staff)
    with pytest.raises(InvalidInput, match="already has a pool named") as reused:
        _open(consortium, vrun, staff)
    assert reused.value.field == "reference"
    ValuationRun.objects.filter(pk=vrun.pk).update(status="failed")
    with pytest.raises(InvalidInput, match="is failed"):
        _open(consortium, vrun, staff, reference="other")
    assert RevenuePool.objects.count() == 1
