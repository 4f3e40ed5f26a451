"""``seed_demo``: the demo consortium end to end, through one demo function per app."""

import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from consortium.models import Consortium, Membership
from ledger.models import Checkpoint, LedgerEntry
from valuation.models import ParticipantUpdate, TrainingRun, ValidationSet

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_seed_demo_creates_the_documented_logins_and_a_training_run():
    output = run("seed_demo", "--seed", "3")
    consortium = Consortium.objects.get(slug="demo")
    participant_logins = [f"{p.slug}@demo.test" for p in consortium.participants.all()]
    for email in ["finance@demo.test", "finance2@demo.test", "governance@demo.test", "auditor@demo.test",
                  *participant_logins]:
        assert get_user_model().objects.get(username=email).check_password("demo"), email
        assert email in output
    roles = dict(Membership.objects.filter(consortium=consortium).values_list("user__username", "role"))
    assert roles["finance2@demo.test"] == "finance" and roles[participant_logins[0]] == "participant"
    run_ = TrainingRun.objects.get(consortium=consortium)
    assert "seed-3" in run_.name
    assert ParticipantUpdate.objects.filter(training_run=run_).count() == 3 * consortium.participants.count()
    assert ValidationSet.objects.filter(training_run=run_, is_active=True).exists()
    verify = io.StringIO()
    call_command("verify_ledger", stdout=verify, stderr=verify)  # exits non-zero (SystemExit) unless intact
    assert LedgerEntry.objects.filter(consortium=consortium).count() >= 2
    assert Checkpoint.objects.exists()


def test_seed_demo_can_run_twice():
    run("seed_demo")
    counts = (TrainingRun.objects.count(), ParticipantUpdate.objects.count(), Membership.objects.count())
    run("seed_demo")
    assert (TrainingRun.objects.count(), ParticipantUpdate.objects.count(), Membership.objects.count()) == counts


def test_seed_demo_is_reproducible_for_a_seed():
    run("seed_demo", "--seed", "7")
    first = sorted(ParticipantUpdate.objects.values_list("participant__slug", "round", "payload_id"))
    TrainingRun.objects.update(name="renamed")  # the next seeding registers a fresh run
    run("seed_demo", "--seed", "7")
    second = sorted(ParticipantUpdate.objects.exclude(training_run__name="renamed")
                    .values_list("participant__slug", "round", "payload_id"))
    assert first == second


@pytest.mark.django_db(transaction=True)
def test_seed_demo_values_its_training_run_in_process_with_the_same_numbers_for_a_seed():
    from valuation.models import ValuationRun

    run("seed_demo", "--seed", "5")
    valuation = ValuationRun.objects.get()
    assert valuation.status == "succeeded", valuation.error_message
    consortium = Consortium.objects.get(slug="demo")
    scores = dict(valuation.scores.values_list("participant__slug", "value"))
    assert set(scores) == set(consortium.participants.values_list("slug", flat=True))
    assert LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(valuation.pk)).count() == 1
    run("seed_demo", "--seed", "5")  # again: the same valuation, nothing new
    assert ValuationRun.objects.count() == 1
    TrainingRun.objects.update(name="renamed")
    run("seed_demo", "--seed", "5")
    again = ValuationRun.objects.exclude(pk=valuation.pk).get()
    assert dict(again.scores.values_list("participant__slug", "value")) == scores
    assert again.input_digest == valuation.input_digest


@pytest.mark.django_db(transaction=True)
def test_seed_demo_issues_a_quarter_million_pool_approved_by_both_finance_logins_with_one_open_dispute():
    from incentives.models import Dispute, RevenuePool

    output = run("seed_demo", "--seed", "2")
    pool = RevenuePool.objects.get(reference="2026-q1")
    assert (pool.status, pool.amount, pool.currency) == ("issued", Decimal("250000.00"), "EUR")
    assert sum(s.amount for s in pool.statements.all()) + pool.reserve_amount == pool.amount
    assert sorted(pool.approvals.values_list("user__username", flat=True)) == ["finance2@demo.test",
                                                                               "finance@demo.test"]
    dispute = Dispute.objects.get()
    assert dispute.status == "open" and dispute.statement.pool == pool
    least = pool.statements.order_by("amount", "participant__slug").first()
    assert dispute.participant == least.participant
    assert "Revenue pool 2026-q1: 250000.00 EUR, issued, with one open dispute." in output
    run("seed_demo", "--seed", "2")  # again: nothing new
    assert (RevenuePool.objects.count(), Dispute.objects.count()) == (1, 1)
    verify = io.StringIO()
    call_command("verify_ledger", stdout=verify, stderr=verify)
