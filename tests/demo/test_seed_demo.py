"""``seed_demo``: the demo consortium end to end, through one demo function per app.

The logins of DESIGN.md section 7, eight AI4I factories, FedAvg rounds uploaded through the
ingestion services, an exact valuation in which the mislabelled factory and the free rider
come out lowest and the two holders of the same logs together, a EUR 250,000.00 pool issued
with the four-eyes approvals, and one open dispute; the same seed gives the same numbers.
"""

import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from consortium.audit import system_principal
from consortium.demo import DEMO_PARTICIPANTS
from consortium.models import Consortium, Membership
from incentives.demo import DISPUTING_FACTORY
from ledger.models import Checkpoint, LedgerEntry
from valuation.demo_consortium import FACTORIES, FREE_RIDER, MISLABELLED, NEAR_COPY, ROUNDS
from valuation.models import ParticipantUpdate, TrainingRun, ValidationSet, ValuationRun

pytestmark = pytest.mark.django_db

MISLABELLED_SLUG = next(f.slug for f in FACTORIES if f.role == MISLABELLED)
FREE_RIDER_SLUG = next(f.slug for f in FACTORIES if f.role == FREE_RIDER)
COPY = next(f for f in FACTORIES if f.role == NEAR_COPY)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_seed_demo_creates_the_documented_logins_and_a_training_run():
    output = run("seed_demo", "--seed", "3")
    consortium = Consortium.objects.get(slug="demo")
    assert sorted(consortium.participants.values_list("slug", "name")) == sorted(DEMO_PARTICIPANTS)
    participant_logins = [f"{p.slug}@demo.test" for p in consortium.participants.all()]
    assert len(participant_logins) == 8
    for email in ["finance@demo.test", "finance2@demo.test", "governance@demo.test", "auditor@demo.test",
                  *participant_logins]:
        assert get_user_model().objects.get(username=email).check_password("demo"), email
        assert email in output
    roles = dict(Membership.objects.filter(consortium=consortium).values_list("user__username", "role"))
    assert roles["finance2@demo.test"] == "finance" and roles[participant_logins[0]] == "participant"
    run_ = TrainingRun.objects.get(consortium=consortium)
    assert "seed-3" in run_.name
    assert (run_.model_family, run_.task, run_.metric) == ("logistic", "binary", "neg_log_loss")
    assert ParticipantUpdate.objects.filter(training_run=run_).count() == ROUNDS * 8
    # The governance body uploaded its validation set itself.
    validation = ValidationSet.objects.get(training_run=run_, is_active=True)
    assert validation.created_by.username == "governance@demo.test" and validation.features == 9
    verify = io.StringIO()
    call_command("verify_ledger", stdout=verify, stderr=verify)  # exits non-zero (SystemExit) unless intact
    assert LedgerEntry.objects.filter(consortium=consortium).count() >= 1
    assert Checkpoint.objects.exists()


def test_the_factories_report_their_record_counts_and_the_free_rider_claims_thousands():
    run("seed_demo")
    run_ = TrainingRun.objects.get()
    counts = dict(ParticipantUpdate.objects.filter(training_run=run_, round=0)
                  .values_list("participant__slug", "num_examples"))
    assert all(1500 <= n <= 8000 for n in counts.values()), counts
    assert counts[COPY.slug] == counts[COPY.copy_of]
    assert counts[FREE_RIDER_SLUG] >= 6500


def test_seed_demo_can_run_twice():
    run("seed_demo")
    counts = (TrainingRun.objects.count(), ParticipantUpdate.objects.count(), Membership.objects.count(),
              LedgerEntry.objects.count())
    run("seed_demo")
    assert (TrainingRun.objects.count(), ParticipantUpdate.objects.count(), Membership.objects.count(),
            LedgerEntry.objects.count()) == counts


def test_seed_demo_is_reproducible_for_a_seed():
    run("seed_demo", "--seed", "7")
    first = sorted(ParticipantUpdate.objects.values_list("participant__slug", "round", "payload_id", "num_examples"))
    TrainingRun.objects.update(name="renamed")  # the next seeding registers a fresh run
    run("seed_demo", "--seed", "7")
    second = sorted(ParticipantUpdate.objects.exclude(training_run__name="renamed")
                    .values_list("participant__slug", "round", "payload_id", "num_examples"))
    assert first == second


def test_a_negative_seed_is_refused():
    with pytest.raises(CommandError):
        run("seed_demo", "--seed", "-1")
    assert not TrainingRun.objects.exists()


def test_the_demo_ledger_has_no_orphan_receipt():
    # Money enters the ledger once, when the pool is issued (its funding entry); before that
    # the demo records the announcement only.
    run("seed_demo")
    assert not LedgerEntry.objects.filter(kind="transaction").exists()
    announced = LedgerEntry.objects.get(reference_type="revenue_pool")
    assert announced.kind == "record" and announced.document["body"]["pool"] == "2026-q1"


@pytest.mark.django_db(transaction=True)
def test_seed_demo_values_its_training_run_in_process_with_the_same_numbers_for_a_seed():
    from incentives.models import RevenuePool
    from incentives.services import pool_create, pool_statements_draft

    run("seed_demo", "--seed", "5")
    valuation = ValuationRun.objects.get()
    assert valuation.status == "succeeded", valuation.error_message
    assert (valuation.method, valuation.seed) == ("exact", 5)
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
    # The same scores split the same pool into the same amounts, to the cent.
    issued = RevenuePool.objects.get(reference="2026-q1")
    check = pool_statements_draft(actor=system_principal(), pool=pool_create(
        actor=system_principal(), consortium=consortium, reference="2026-q1-check", period="2026-Q1",
        amount=Decimal("250000.00"), currency="EUR", valuation_runs=[again.pk]))
    amounts = dict(issued.statements.values_list("participant__slug", "amount"))
    assert dict(check.statements.values_list("participant__slug", "amount")) == amounts
    # Another seed: other factories, other numbers.
    run("seed_demo", "--seed", "6")
    other = ValuationRun.objects.get(seed=6)
    other_scores = dict(other.scores.values_list("participant__slug", "value"))
    assert all(other_scores[slug] != value for slug, value in scores.items())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_valuation_finds_the_mislabelled_factory_the_free_rider_and_the_near_copies(seed):
    from incentives.models import Dispute, RevenuePool

    run("seed_demo", "--seed", str(seed))
    valuation = ValuationRun.objects.get()
    value = dict(valuation.scores.values_list("participant__slug", "value"))
    lowest = sorted(value, key=value.get)[:2]
    assert set(lowest) == {MISLABELLED_SLUG, FREE_RIDER_SLUG}, value
    spread = max(value.values()) - min(value.values())
    assert abs(value[COPY.slug] - value[COPY.copy_of]) < 0.01 * spread, value
    # The pool is split to the cent; negative values are paid nothing; the copies alike.
    pool = RevenuePool.objects.get(reference="2026-q1")
    amounts = dict(pool.statements.values_list("participant__slug", "amount"))
    assert sum(amounts.values()) + pool.reserve_amount == Decimal("250000.00")
    assert amounts[MISLABELLED_SLUG] == amounts[FREE_RIDER_SLUG] == Decimal("0.00")
    assert abs(amounts[COPY.slug] - amounts[COPY.copy_of]) < Decimal("0.01") * max(amounts.values())
    assert Dispute.objects.filter(status="open").count() == 1


@pytest.mark.django_db(transaction=True)
def test_seed_demo_issues_a_quarter_million_pool_approved_by_both_finance_logins_with_one_open_dispute():
    from incentives.models import Dispute, RevenuePool

    output = run("seed_demo", "--seed", "2")
    pool = RevenuePool.objects.get(reference="2026-q1")
    assert (pool.status, pool.amount, pool.currency) == ("issued", Decimal("250000.00"), "EUR")
    assert sum(s.amount for s in pool.statements.all()) + pool.reserve_amount == pool.amount == Decimal("250000.00")
    assert sorted(pool.approvals.values_list("user__username", flat=True)) == ["finance2@demo.test",
                                                                               "finance@demo.test"]
    # The mislabelled factory disputes: it is among the lowest paid and says why.
    dispute = Dispute.objects.get()
    assert dispute.status == "open" and dispute.statement.pool == pool and dispute.line == "contribution"
    assert dispute.participant.slug == DISPUTING_FACTORY == MISLABELLED_SLUG
    assert dispute.statement.amount == min(s.amount for s in pool.statements.all())
    assert "failure column" in dispute.reason and "0.00 EUR" in dispute.reason
    assert "Revenue pool 2026-q1: 250000.00 EUR, issued, with one open dispute." in output
    # Money entered the ledger once, through the pool's funding, and the pool account is empty again.
    postings = [p for e in LedgerEntry.objects.filter(kind="transaction") for p in e.document["postings"]]
    assert {p["account"] for p in postings if p["account"].startswith("revenue_pool")} == {"revenue_pool:2026-q1"}
    assert sum(Decimal(p["amount"]) for p in postings if p["account"] == "revenue_pool:2026-q1") == 0
    assert sum(Decimal(p["amount"]) for p in postings if p["account"] == "consortium_income") == Decimal("-250000.00")
    run("seed_demo", "--seed", "2")  # again: nothing new
    assert (RevenuePool.objects.count(), Dispute.objects.count()) == (1, 1)
    verify = io.StringIO()
    call_command("verify_ledger", stdout=verify, stderr=verify)
