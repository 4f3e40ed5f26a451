"""Finance's main journey in a real browser: start a valuation from the form and watch it
finish through the live progress, then open a revenue pool on it, draft its statements,
have two other finance users approve them (four eyes) and issue it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from consortium.access import Principal
from tests.browser.steps import csp_violations, sign_in
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory, ParticipantFactory, UserFactory
from tests.valuation.conftest import LOGISTIC_SPEC
from tests.valuation.runs.conftest import upload_rounds
from valuation.models import ValuationRun
from valuation.services import training_run_create
from valuation.services import valuation_runs as valuation_run_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base_url, username):
    sign_in(page, base_url, username)
    expect(page.get_by_role("heading", name="Your consortia")).to_be_visible()


@pytest.fixture
def world():
    """Acme with four factories that sent two rounds of a logistic model, and three finance users."""
    consortium = ConsortiumFactory(slug="acme", name="Acme Consortium")
    participants = [ParticipantFactory(consortium=consortium, slug=slug, name=slug.title())
                    for slug in ("bremen", "lyon", "porto", "turin")]
    coordinator = Principal(api_key=ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation"]))
    run = training_run_create(actor=coordinator, consortium=consortium, name="spindle-failures", model_family="logistic",
                              task="binary", metric="neg_log_loss", parameter_spec=LOGISTIC_SPEC)
    upload_rounds(actor=coordinator, training_run=run, participants=participants, rounds=2, seed=11)
    users = [MembershipFactory(user=UserFactory(username=f"finance{i}@acme.test"), consortium=consortium,
                               role="finance").user.username for i in (1, 2, 3)]
    return {"consortium": consortium, "training_run": run, "users": users}


def test_finance_values_a_training_run_then_drafts_approves_and_issues_a_pool(
        page, browser, live_server, world, monkeypatch):
    violations: list[str] = []
    csp_violations(page, violations)
    base = live_server.url
    _sign_in(page, base, world["users"][0])
    page.get_by_role("link", name="Acme Consortium").click()
    expect(page.get_by_role("heading", name="Acme Consortium")).to_be_visible()

    # Start a valuation from the form. Its work is held back (as if no worker had taken it
    # yet) so that the page shows the run queued, and then sees it finish while polling.
    enqueue = valuation_run_services.valuation_run_enqueue
    monkeypatch.setattr(valuation_run_services, "valuation_run_enqueue", lambda **kwargs: True)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Valuations").click()
    start = page.locator("form", has=page.get_by_role("button", name="Start valuation"))
    start.get_by_label("Training run").select_option(label="spindle-failures (logistic, neg_log_loss)")
    start.get_by_label("Method").select_option("exact")
    start.get_by_label("Seed").fill("7")
    start.get_by_role("button", name="Start valuation").click()
    expect(page.get_by_text("requested (exact, seed 7)")).to_be_visible()
    expect(page.get_by_test_id("run-status")).to_have_text("queued")
    expect(page.get_by_test_id("run-progress")).to_contain_text("Waiting for a worker")
    run = ValuationRun.objects.get()
    assert page.url.endswith(f"/c/acme/valuations/{run.pk}/")

    # Polls wait in the browser while the work runs here (one database connection is shared
    # with the live server), then reach the server and swap the results in.
    page.route("**/progress", lambda route: route.continue_())
    with page.expect_response(lambda response: response.url.endswith("/progress")) as polled:
        pass
    assert polled.value.status == 200
    enqueue(valuation_run_id=run.pk)
    expect(page.get_by_test_id("run-status")).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("#run-live[hx-trigger]")).to_have_count(0)  # polling stopped
    run.refresh_from_db()
    scores = {score.participant.slug: score for score in run.scores.select_related("participant")}
    results = page.get_by_test_id("results-table")
    expect(results.locator("tbody tr")).to_have_count(4)
    for slug, score in scores.items():
        row = results.locator("tbody tr", has=page.get_by_role("rowheader", name=slug, exact=True))
        expect(row.locator("td").nth(1)).to_have_text(format(score.value, ".6g"))
        chart_row = page.get_by_test_id("values-chart-table").locator(
            "tr", has=page.get_by_role("rowheader", name=slug, exact=True))
        expect(chart_row.locator("td").first).to_have_text(format(score.value, ".6g"))
    # Per round, the participants' parts stacked (the leading five by rank, then all others) and the total.
    ranked = sorted(scores, key=lambda slug: (scores[slug].rank, slug))
    per_round = page.get_by_test_id("rounds-chart-table")
    expect(per_round.locator("thead th")).to_have_text(["Round", *ranked, "Total"])
    expect(per_round.locator("tbody th")).to_have_text(["round 0", "round 1"])
    total = sum(score.per_round["0"] for score in scores.values())
    expect(per_round.locator("tbody tr").first.locator("td").last).to_have_text(format(total, ".6g"))

    # Open a revenue pool on it and draft the statements.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Revenue pools").click()
    page.get_by_label("Reference").fill("2026-q1")
    page.get_by_label("Period").fill("2026-Q1")
    page.get_by_label("Amount").fill("250000.00")
    page.get_by_label(re.compile(rf"spindle-failures · exact · seed 7 .*{str(run.pk)[:8]}")).check()
    page.get_by_role("button", name="Open pool").click()
    expect(page.get_by_test_id("pool-status")).to_have_text("draft")
    pool_url = page.url
    page.get_by_role("button", name="Draft statements").click()
    expect(page.get_by_test_id("pool-status")).to_have_text("drafted")
    expect(page.get_by_text("You drafted these statements")).to_be_visible()
    expect(page.get_by_role("button", name="Approve statements")).to_have_count(0)

    # Two other finance users approve, each in a browser of their own.
    for username, approvals in ((world["users"][1], "1 of 2"), (world["users"][2], "2 of 2")):
        context = browser.new_context()
        other = context.new_page()
        csp_violations(other, violations)
        _sign_in(other, base, username)
        other.goto(pool_url)
        other.get_by_role("button", name="Approve statements").click()
        expect(other.get_by_text(f"({approvals} approvals)")).to_be_visible()
        context.close()

    page.reload()
    expect(page.get_by_test_id("pool-status")).to_have_text("approved")
    page.get_by_role("button", name="Issue pool").click()
    expect(page.get_by_test_id("pool-status")).to_have_text("issued")
    pool_amount = page.get_by_test_id("pool-amount").inner_text()
    assert pool_amount == "250000.00 EUR"
    amounts = [Decimal(text) for text in page.get_by_test_id("statement-amount").all_inner_texts()]
    assert len(amounts) == 4 and sum(amounts) == Decimal("250000.00")
    expect(page.get_by_test_id("statements-total")).to_have_text("250000.00 EUR")
    expect(page.get_by_test_id("approval")).to_have_count(2)
    assert violations == []
