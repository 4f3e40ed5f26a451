"""Disputes through their services: filed, reviewed, re-valued and compared, decided (upheld:
reversal, correction from the reserve, a revised statement version; rejected: a record only),
participants e-mailed after commit, and every refusal writes nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from consortium.access import Principal
from consortium.models import AuditEvent
from core.errors import Conflict, InvalidInput, NotAllowed, NotFound, TooLarge
from incentives.dispute_selectors import dispute_comparison
from incentives.models import Dispute, DisputeEvent, Statement
from incentives.services import (
    dispute_decide,
    dispute_file,
    dispute_revaluation_order,
    dispute_review,
    pool_approve,
    pool_create,
    pool_issue,
    pool_statements_draft,
)
from ledger.models import LedgerEntry
from tests.factories import ApiKeyFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool(consortium, vrun, staff):
    pool = pool_create(actor=staff.principal("drafter"), consortium=consortium, reference="2026-q1",
                       period="2026-Q1", amount=Decimal("1000.00"), currency="EUR", valuation_runs=[vrun.pk])
    pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    pool_approve(actor=staff.principal("first"), pool=pool)
    pool_approve(actor=staff.principal("second"), pool=pool)
    return pool_issue(actor=staff.principal("first"), pool=pool)


@pytest.fixture
def alpha(consortium, settled_participants):
    participant = consortium.participants.get(slug="alpha")
    user = MembershipFactory(consortium=consortium, role="participant", participant=participant).user
    user.email = "alpha-staff@example.test"
    user.save()
    return Principal(user=user)


def _statement(pool, slug: str = "alpha") -> Statement:
    return pool.statements.select_related("pool__consortium", "participant").get(participant__slug=slug, version=1)


def _filed(alpha, pool, line: str = "amount") -> Dispute:
    return dispute_file(actor=alpha, statement=_statement(pool), line=line, reason="Our round-2 update is missing.")


def _reviewed(alpha, pool, staff) -> Dispute:
    return dispute_review(actor=staff.principal("governance"), dispute=_filed(alpha, pool))


def _written() -> tuple[int, int, int, int]:
    return (Dispute.objects.count(), DisputeEvent.objects.count(), LedgerEntry.objects.count(),
            Statement.objects.count())


def _postings(seq: int) -> dict[str, Decimal]:
    return {p["account"]: Decimal(p["amount"]) for p in LedgerEntry.objects.get(seq=seq).document["postings"]}


def test_a_participant_files_a_dispute_with_a_deadline_and_a_trail(alpha, pool, settings):
    settings.DISPUTE_RESPONSE_DAYS = 14
    dispute = _filed(alpha, pool)
    assert (dispute.status, dispute.outcome, dispute.participant.slug) == ("open", "", "alpha")
    assert dispute.response_deadline == timezone.localdate() + timedelta(days=14)
    event = dispute.events.get()
    assert (event.action, event.actor_label, event.actor_user) == ("filed", alpha.label, alpha.user)
    assert AuditEvent.objects.filter(action="dispute.filed", object_id=str(dispute.pk)).exists()


def test_an_upheld_dispute_reverses_version_1_posts_version_2_from_the_reserve_and_keeps_version_1(
        alpha, pool, staff, django_capture_on_commit_callbacks, mailoutbox):
    original = _statement(pool)
    revised_amount = original.amount + Decimal("25.00")
    with django_capture_on_commit_callbacks(execute=True):
        dispute = dispute_decide(actor=staff.principal("governance"), dispute=_reviewed(alpha, pool, staff),
                                 outcome="upheld", amount=revised_amount, note="Round 2 was dropped.")
    original.refresh_from_db()
    revised = dispute.revised_statement
    assert (dispute.status, dispute.outcome, dispute.adjustment) == ("decided", "upheld", Decimal("25.00"))
    assert original.status == Statement.Status.SUPERSEDED and original.ledger_entry_seq is not None
    assert (revised.version, revised.supersedes_id, revised.status) == (2, original.pk, Statement.Status.ISSUED)
    assert revised.amount == revised_amount and revised.allocated == original.allocated + Decimal("25.00")
    # The reversal is the exact negation of version 1's entry.
    v1 = _postings(original.ledger_entry_seq)
    assert _postings(dispute.reversal_entry_seq) == {account: -amount for account, amount in v1.items()}
    reversal = LedgerEntry.objects.get(seq=dispute.reversal_entry_seq)
    assert (reversal.reference_type, reversal.reference_id) == ("statement", str(original.pk))
    # Version 2's entry balances: the 25.00 comes out of the reserve.
    correction = _postings(revised.ledger_entry_seq)
    assert correction == {"revenue_pool:2026-q1": -original.allocated, "reserve": Decimal("-25.00"),
                          "participant_payable:alpha": revised_amount}
    assert sum(correction.values()) == 0 and dispute.correction_entry_seq == revised.ledger_entry_seq
    record = LedgerEntry.objects.get(seq=dispute.decision_entry_seq)
    assert (record.kind, record.reference_type, record.document["body"]["outcome"]) == ("record", "dispute", "upheld")
    for seq in (dispute.reversal_entry_seq, dispute.correction_entry_seq, dispute.decision_entry_seq):
        assert list(LedgerEntry.objects.get(seq=seq).participants.values_list("slug", flat=True)) == ["alpha"]
    # Filed, reviewed, decided: each told to alpha's staff, the last with the outcome.
    assert [m.to for m in mailoutbox] == [["alpha-staff@example.test"]] * 3
    assert "upheld" in mailoutbox[-1].body.lower() and "version 2" in mailoutbox[-1].body


def test_a_lower_revised_amount_returns_the_difference_to_the_reserve(alpha, pool, staff):
    original = _statement(pool)
    dispute = dispute_decide(actor=staff.principal("governance"), dispute=_reviewed(alpha, pool, staff),
                             outcome="upheld", amount=original.amount - Decimal("10.00"))
    assert _postings(dispute.correction_entry_seq)["reserve"] == Decimal("10.00")
    assert dispute.adjustment == Decimal("-10.00")


def test_a_rejected_dispute_writes_only_the_decision_record_and_tells_the_participant(
        alpha, pool, staff, django_capture_on_commit_callbacks, mailoutbox):
    dispute = _reviewed(alpha, pool, staff)
    entries = LedgerEntry.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        dispute = dispute_decide(actor=staff.principal("governance"), dispute=dispute, outcome="rejected",
                                 note="The round was late.")
    assert LedgerEntry.objects.count() == entries + 1
    record = LedgerEntry.objects.get(seq=dispute.decision_entry_seq)
    assert record.kind == "record" and record.document["body"]["note"] == "The round was late."
    assert dispute.revised_statement is None and dispute.reversal_entry_seq is None
    assert _statement(pool).status == Statement.Status.ISSUED
    assert [e.action for e in dispute.events.all()] == ["filed", "reviewed", "decided"]
    assert len(mailoutbox) == 1 and "Rejected" in mailoutbox[0].body


def test_every_step_emails_the_disputing_participants_users_only(
        consortium, alpha, pool, staff, django_capture_on_commit_callbacks, mailoutbox):
    beta_user = MembershipFactory(consortium=consortium, role="participant",
                                  participant=consortium.participants.get(slug="beta")).user
    with django_capture_on_commit_callbacks(execute=True):
        dispute = _filed(alpha, pool)
    with django_capture_on_commit_callbacks(execute=True):
        dispute_review(actor=staff.principal("governance"), dispute=dispute)
    assert [m.subject for m in mailoutbox] == ["[Fairshare] Your dispute was received",
                                               "[Fairshare] Your dispute is under review"]
    assert all(beta_user.email not in m.to for m in mailoutbox)


def test_no_email_leaves_for_an_action_that_rolled_back(alpha, pool, staff, django_capture_on_commit_callbacks,
                                                        mailoutbox):
    dispute = _filed(alpha, pool)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict):
        dispute_decide(actor=staff.principal("governance"), dispute=dispute, outcome="rejected")
    assert mailoutbox == []


def _order(alpha, pool, staff, capture, **settings_):
    dispute = _reviewed(alpha, pool, staff)
    with capture(execute=True):
        dispute = dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, **settings_)
    dispute.revaluation.refresh_from_db()
    assert dispute.revaluation.status == "succeeded", dispute.revaluation.error_message
    return dispute


def test_an_exact_revaluation_agrees_with_the_exact_run_so_nothing_lies_outside_the_old_interval(
        alpha, pool, staff, vrun, django_capture_on_commit_callbacks):
    dispute = _order(alpha, pool, staff, django_capture_on_commit_callbacks, method="exact")
    assert (dispute.status, dispute.revalued_run_id) == ("revaluation_ordered", vrun.pk)
    assert dispute.revaluation.training_run_id == vrun.training_run_id and dispute.revaluation.rounds == vrun.rounds
    compared = dispute_comparison(principal=staff.principal("governance"), dispute=dispute)
    assert len(compared["rows"]) == 5
    for row in compared["rows"]:
        assert row["difference"] == pytest.approx(0.0, abs=1e-12)
        assert row["outside_old_interval"] is False
        assert row["old"]["value"] == pytest.approx(row["new"]["value"], abs=1e-12)


def test_a_sampled_revaluation_outside_the_exact_runs_zero_width_interval_is_flagged(
        alpha, pool, staff, django_capture_on_commit_callbacks):
    dispute = _order(alpha, pool, staff, django_capture_on_commit_callbacks, method="permutation", budget=60, seed=3)
    rows = dispute_comparison(principal=staff.principal("governance"), dispute=dispute)["rows"]
    moved = [row for row in rows if abs(row["difference"]) > 1e-12]
    assert moved, "a 60-coalition sample should move some value off the exact one"
    assert all(row["outside_old_interval"] for row in moved)  # the exact run's interval has zero width
    assert all(row["new"]["stderr"] >= 0 for row in rows)


def test_a_participant_sees_only_its_own_comparison_row_unless_all_figures_are_shown(
        consortium, alpha, pool, staff, django_capture_on_commit_callbacks):
    dispute = _order(alpha, pool, staff, django_capture_on_commit_callbacks, method="exact")
    consortium.transparency = "own"
    consortium.save()
    assert [row["participant"] for row in dispute_comparison(principal=alpha, dispute=dispute)["rows"]] == ["alpha"]


def test_an_upheld_dispute_after_a_revaluation_carries_the_new_figures_into_version_2(
        alpha, pool, staff, django_capture_on_commit_callbacks):
    dispute = _order(alpha, pool, staff, django_capture_on_commit_callbacks, method="permutation", budget=60, seed=3)
    original = _statement(pool)
    dispute = dispute_decide(actor=staff.principal("governance"), dispute=dispute, outcome="upheld",
                             amount=original.amount)
    new_score = dispute.revaluation.scores.get(participant__slug="alpha")
    revised = dispute.revised_statement
    assert revised.contribution == pytest.approx(new_score.value) and "permutation" in revised.methods
    assert all(key.startswith(f"{dispute.revaluation_id}:") for key in revised.per_round)
    assert dispute.adjustment == 0


# -- refusals: a clear error, and nothing written -------------------------------------------------


def test_disputing_another_participants_statement_is_not_found_and_writes_nothing(alpha, pool):
    before = _written()
    with pytest.raises(NotFound):
        dispute_file(actor=alpha, statement=_statement(pool, "beta"), line="amount", reason="x")
    assert _written() == before


def test_staff_and_api_keys_cannot_file(consortium, pool, staff):
    for actor in (staff.principal("governance"), Principal(api_key=ApiKeyFactory(consortium=consortium,
                                                                                  scopes=["read"]))):
        with pytest.raises(NotAllowed):
            dispute_file(actor=actor, statement=_statement(pool), line="amount", reason="x")
    assert not Dispute.objects.exists()


def test_a_draft_or_superseded_statement_cannot_be_disputed(consortium, alpha, pool, vrun, staff):
    draft_pool = pool_create(actor=staff.principal("drafter"), consortium=consortium, reference="draft",
                             period="2026-Q2", amount=Decimal("10.00"), currency="EUR", valuation_runs=[vrun.pk])
    pool_statements_draft(actor=staff.principal("drafter"), pool=draft_pool)
    before = _written()
    with pytest.raises(Conflict, match="not issued yet"):
        dispute_file(actor=alpha, statement=_statement(draft_pool), line="amount", reason="x")
    assert _written() == before
    dispute_decide(actor=staff.principal("governance"), dispute=_reviewed(alpha, pool, staff), outcome="upheld",
                   amount=Decimal("0.00"))
    before = _written()
    with pytest.raises(Conflict, match="revised"):
        dispute_file(actor=alpha, statement=_statement(pool), line="share", reason="x")
    assert _written() == before


def test_a_second_undecided_dispute_on_the_same_line_is_a_conflict_but_another_line_is_fine(alpha, pool):
    _filed(alpha, pool, "amount")
    before = _written()
    with pytest.raises(Conflict, match="undecided dispute"):
        _filed(alpha, pool, "amount")
    assert _written() == before
    assert _filed(alpha, pool, "share").line == "share"


@pytest.mark.parametrize(("line", "reason", "field"), [
    ("bonus", "x", "line"), ("amount", "   ", "reason"), ("amount", "x" * 5001, "reason"),
])
def test_a_bad_line_or_reason_is_refused_naming_the_field(alpha, pool, line, reason, field):
    with pytest.raises(InvalidInput) as refused:
        dispute_file(actor=alpha, statement=_statement(pool), line=line, reason=reason)
    assert refused.value.field == field and not Dispute.objects.exists()


def test_an_attachment_over_the_upload_limit_is_too_large_and_nothing_is_stored(alpha, pool, settings):
    settings.UPLOAD_MAX_BYTES = 10
    with pytest.raises(TooLarge):
        dispute_file(actor=alpha, statement=_statement(pool), line="amount", reason="x", attachment=b"x" * 11,
                     attachment_filename="a.pdf", attachment_content_type="application/pdf")
    assert not Dispute.objects.exists()
    assert not (settings.MEDIA_ROOT / "disputes").exists()


def test_an_attachment_that_is_a_web_page_is_refused(alpha, pool):
    with pytest.raises(InvalidInput) as refused:
        dispute_file(actor=alpha, statement=_statement(pool), line="amount", reason="x", attachment=b"<script>",
                     attachment_filename="a.html", attachment_content_type="text/html")
    assert refused.value.field == "attachment" and not Dispute.objects.exists()


def test_an_attachment_is_stored_with_its_size_and_hash_and_removed_if_filing_fails(alpha, pool, settings):
    dispute = dispute_file(actor=alpha, statement=_statement(pool), line="amount", reason="x", attachment=b"%PDF-1",
                           attachment_filename="e.pdf", attachment_content_type="application/pdf")
    assert (dispute.attachment_size, len(dispute.attachment_sha256)) == (6, 64)
    assert (settings.MEDIA_ROOT / dispute.attachment_name).read_bytes() == b"%PDF-1"
    with pytest.raises(Conflict):  # the same line again: the second file must not stay behind
        dispute_file(actor=alpha, statement=_statement(pool), line="amount", reason="x", attachment=b"%PDF-2",
                     attachment_filename="e.pdf", attachment_content_type="application/pdf")
    assert [p.read_bytes() for p in (settings.MEDIA_ROOT / "disputes").rglob("*") if p.is_file()] == [b"%PDF-1"]


def test_deciding_an_unreviewed_dispute_or_one_already_decided_is_a_conflict(alpha, pool, staff):
    governance = staff.principal("governance")
    dispute = _filed(alpha, pool)
    with pytest.raises(Conflict, match="under review"):
        dispute_decide(actor=governance, dispute=dispute, outcome="rejected")
    dispute_review(actor=governance, dispute=dispute)
    dispute_decide(actor=governance, dispute=dispute, outcome="rejected")
    before = _written()
    with pytest.raises(Conflict, match="already decided"):
        dispute_decide(actor=governance, dispute=dispute, outcome="upheld", amount=Decimal("1.00"))
    with pytest.raises(Conflict):
        dispute_review(actor=governance, dispute=dispute)
    assert _written() == before


@pytest.mark.parametrize(("outcome", "amount", "field"), [
    ("upheld", Decimal("10.005"), "amount"), ("upheld", Decimal("-1.00"), "amount"), ("upheld", None, "amount"),
    ("upheld", "abc", "amount"), ("rejected", Decimal("1.00"), "amount"), ("maybe", None, "outcome"),
])
def test_a_bad_decision_is_refused_naming_the_field_and_writes_nothing(alpha, pool, staff, outcome, amount, field):
    dispute = _reviewed(alpha, pool, staff)
    before = _written()
    with pytest.raises(InvalidInput) as refused:
        dispute_decide(actor=staff.principal("governance"), dispute=dispute, outcome=outcome, amount=amount)
    assert refused.value.field == field and _written() == before
    dispute.refresh_from_db()
    assert dispute.status == "under_review"


def test_a_revaluation_is_ordered_only_under_review_and_bad_settings_write_nothing(alpha, pool, staff):
    governance = staff.principal("governance")
    dispute = _filed(alpha, pool)
    with pytest.raises(Conflict):
        dispute_revaluation_order(actor=governance, dispute=dispute)
    dispute_review(actor=governance, dispute=dispute)
    before = _written()
    with pytest.raises(InvalidInput) as refused:
        dispute_revaluation_order(actor=governance, dispute=dispute, method="permutation")  # no budget
    assert refused.value.field == "budget" and _written() == before
    dispute.refresh_from_db()
    assert dispute.status == "under_review" and dispute.revaluation is None


def test_deciding_while_the_revaluation_runs_is_a_conflict(alpha, pool, staff):
    governance = staff.principal("governance")
    dispute = dispute_revaluation_order(actor=governance, dispute=_reviewed(alpha, pool, staff))  # never run
    with pytest.raises(Conflict, match="not finished"):
        dispute_decide(actor=governance, dispute=dispute, outcome="rejected")


def test_a_second_upheld_dispute_on_a_revised_statement_is_a_conflict(alpha, pool, staff):
    governance = staff.principal("governance")
    first = _reviewed(alpha, pool, staff)
    second = dispute_review(actor=governance, dispute=_filed(alpha, pool, "share"))
    dispute_decide(actor=governance, dispute=first, outcome="upheld", amount=Decimal("1.00"))
    before = _written()
    with pytest.raises(Conflict, match="already revised"):
        dispute_decide(actor=governance, dispute=second, outcome="upheld", amount=Decimal("2.00"))
    assert _written() == before
