"""Governance in a real browser: the dispute queue with its deadline, a dispute taken under
review, an exact re-valuation compared side by side with the sampled run it redoes, and an
upheld decision whose revised statement (version 2) carries the amount the comparison implied."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from consortium.access import Principal
from incentives.models import Statement
from incentives.services import dispute_file
from ledger.currencies import money_text
from tests.browser.steps import csp_violations, sign_in
from tests.browser.test_participant_journey import issued_pool
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory, ParticipantFactory, UserFactory
from tests.valuation.conftest import LOGISTIC_SPEC
from tests.valuation.runs.conftest import upload_rounds
from valuation.services import training_run_create, valuation_run_start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sampled_run(consortium, participants):
    """A permutation-sampling valuation on a small budget: an exact one will differ from it."""
    actor = Principal(api_key=ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation", "valuation"]))
    training_run = training_run_create(actor=actor, consortium=consortium, name="spindle-failures", task="binary",
                                       model_family="logistic", metric="neg_log_loss", parameter_spec=LOGISTIC_SPEC)
    upload_rounds(actor=actor, training_run=training_run, participants=participants, rounds=2, seed=4)
    run = valuation_run_start(actor=actor, training_run=training_run, method="permutation", budget=16, seed=1)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    return run


def test_governance_revalues_compares_and_upholds_a_dispute(page, live_server):
    consortium = ConsortiumFactory(slug="acme", name="Acme Consortium")
    plants = [ParticipantFactory(consortium=consortium, slug=slug) for slug in ("alpha", "beta", "gamma", "delta")]
    pool = issued_pool(consortium, sampled_run(consortium, plants))
    original = pool.statements.select_related("participant", "pool").order_by("-amount")[0]
    filer = MembershipFactory(consortium=consortium, role="participant", participant=original.participant).user
    dispute = dispute_file(actor=Principal(user=filer), statement=original, line="contribution",
                           reason="Sampling on 16 coalitions is too coarse for a payout.")
    MembershipFactory(user=UserFactory(username="governance@acme.test"), consortium=consortium, role="governance")
    violations = csp_violations(page)

    sign_in(page, live_server.url, "governance@acme.test")
    page.get_by_role("link", name="Acme Consortium").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Disputes").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dispute queue")
    queue = page.get_by_role("table", name="Disputes")
    expect(queue.locator("tbody tr")).to_have_count(1)
    expect(queue.get_by_test_id("deadline")).to_have_text(f"{dispute.response_deadline:%Y-%m-%d}")
    queue.get_by_role("link", name=re.compile(f"dispute of {original.participant.slug}")).click()

    expect(page.get_by_test_id("dispute-status")).to_have_text("Open")
    page.get_by_role("button", name="Start the review").click()
    expect(page.get_by_test_id("dispute-status")).to_have_text("Under review")
    page.get_by_label("Method").select_option("exact")
    page.get_by_role("button", name="Order the re-valuation").click()  # runs in-process as the order commits

    expect(page.get_by_test_id("revaluation-status")).to_have_text("Succeeded")
    comparison = page.get_by_test_id("comparison")
    expect(comparison.locator("tbody tr")).to_have_count(4)
    expect(comparison).to_contain_text("permutation → exact")
    expect(page.get_by_test_id("revaluation-comparison-table")).to_contain_text(f"{original.participant.slug} · new")
    implied = page.get_by_test_id("implied-amount").locator("strong").inner_text()
    uphold = page.locator("form", has=page.get_by_role("button", name="Uphold the dispute"))
    expect(uphold.get_by_label("Revised amount (EUR)")).to_have_value(implied.removesuffix(" EUR"))
    uphold.get_by_label("Written decision").fill("The exact re-valuation replaces the sampled one.")
    uphold.get_by_role("button", name="Uphold the dispute").click()

    expect(page.get_by_test_id("dispute-outcome")).to_have_text("Upheld")
    expect(page.get_by_test_id("decision-note")).to_have_text("The exact re-valuation replaces the sampled one.")
    revised_link = page.get_by_test_id("revised-statement")
    expect(revised_link).to_contain_text(f"version 2, {implied}")
    revised_link.click()
    expect(page.locator(".headline .amount strong")).to_have_text(implied)
    revised = Statement.objects.get(supersedes=original)
    assert f"{money_text(revised.amount, 'EUR')} EUR" == implied
    assert revised.amount != original.amount  # the comparison moved the money
    assert Statement.objects.get(pk=original.pk).status == "superseded"
    assert violations == []
