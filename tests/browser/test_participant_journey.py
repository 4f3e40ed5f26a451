"""A participant in a real browser: its contribution (only its own organisation's), its
statement with the PDF and CSV downloads, a dispute filed from the contribution line; another
participant's statement is the 404 page; no Content-Security-Policy violation on the way."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from consortium.access import Principal
from incentives.services import pool_approve, pool_create, pool_issue, pool_statements_draft
from ledger.currencies import money_text
from tests.browser.steps import csp_violations, sign_in
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory, UserFactory
from tests.incentives.conftest import valued_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



def issued_pool(consortium, run):
    """A EUR 250,000.00 pool resting on ``run``, drafted, approved by two finance users and issued."""
    drafter, first, second = (Principal(user=MembershipFactory(consortium=consortium, role="finance").user)
                              for _ in range(3))
    pool = pool_create(actor=drafter, consortium=consortium, reference="2026-q1", period="2026-Q1",
                       amount=Decimal("250000.00"), currency="EUR", valuation_runs=[run.pk])
    pool = pool_statements_draft(actor=drafter, pool=pool)
    pool_approve(actor=first, pool=pool)
    pool_approve(actor=second, pool=pool)
    return pool_issue(actor=first, pool=pool)



def test_a_participant_downloads_its_statement_and_disputes_a_line(page, live_server):
    consortium = ConsortiumFactory(slug="acme", name="Acme Consortium")
    factories = [ParticipantFactory(consortium=consortium, slug=slug, name=name)
                 for slug, name in [("alpha", "Alpha Works"), ("beta", "Beta Plant"), ("gamma", "Gamma Mills")]]
    run = valued_run(consortium, factories)  # embedded mode: valued when its start commits
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    pool = issued_pool(consortium, run)
    # the signed-in participant is the one paid most, the other one is paid least
    mine, theirs = pool.statements.order_by("-amount")[0], pool.statements.order_by("amount")[0]
    assert mine.amount > 0
    own = mine.participant
    value = run.scores.get(participant=own).value
    MembershipFactory(user=UserFactory(username="plant@acme.test"), consortium=consortium, role="participant",
                      participant=own)
    violations = csp_violations(page)

    sign_in(page, live_server.url, "plant@acme.test")
    page.get_by_role("link", name="Acme Consortium").click()
    menu = page.get_by_role("navigation", name="Main")
    menu.get_by_role("link", name="My contribution").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"My contribution: {own.name}")
    numbers = page.get_by_test_id("contribution-over-time-table")
    expect(numbers).to_contain_text(repr(value))
    participants = page.get_by_role("table", name="Participants in the latest valuation run")
    expect(participants.locator("tbody tr")).to_have_count(1)  # own figures only, by default
    expect(participants).to_contain_text(own.slug)
    expect(participants).not_to_contain_text(theirs.participant.slug)

    menu.get_by_role("link", name="Statements").click()
    amount = f"{money_text(mine.amount, 'EUR')} EUR"
    expect(page.get_by_role("table", name="Statements").locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name=amount).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Statement: {own.name}, 2026-Q1")
    with page.expect_download() as pdf:
        page.get_by_role("link", name="PDF", exact=True).click()
    assert open(pdf.value.path(), "rb").read().startswith(b"%PDF")
    with page.expect_download() as spreadsheet:
        page.get_by_role("link", name="CSV", exact=True).click()
    assert amount in open(spreadsheet.value.path(), encoding="utf-8").read()

    page.get_by_role("link", name="Dispute this line (Contribution)").click()
    expect(page.get_by_label("Line you dispute")).to_have_value("contribution")
    page.get_by_label("Why it is wrong").fill("Our round 2 update is missing from the valuation.")
    page.get_by_role("button", name="File the dispute").click()
    expect(page.get_by_role("status").first).to_contain_text("Your dispute was filed")
    expect(page.get_by_test_id("dispute-status")).to_have_text("Open")
    deadline = timezone.localdate() + timedelta(days=settings.DISPUTE_RESPONSE_DAYS)
    expect(page.get_by_test_id("dispute-deadline")).to_have_text(f"{deadline:%Y-%m-%d}")
    expect(page.get_by_text("Our round 2 update is missing")).to_be_visible()

    response = page.goto(f"{live_server.url}/c/acme/statements/{theirs.pk}/")
    assert response.status == 404
    assert violations == []
