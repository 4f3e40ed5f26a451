"""The consortium overview: staff see the pools (by state, issued and paid per currency), the
latest checkpoint, the latest valuation runs, the training runs and participants; a
participant user sees its own latest figures and its pages."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from consortium.access import Principal
from incentives.services import pool_create, pool_mark_paid
from ledger.models import Checkpoint
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.incentives.conftest import valued_run
from tests.incentives.worlds import pools_in_every_state

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def valued(consortium, participants, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = valued_run(consortium, participants, seed=1)
    run.refresh_from_db()
    assert run.status == "succeeded"
    return run


@pytest.fixture
def settled(consortium, valued):
    """Pools drafted, approved and issued then paid (1000.00 EUR each), and a draft USD pool."""
    pools = pools_in_every_state(consortium, valued)
    finance = Principal(user=MembershipFactory(consortium=consortium, role="finance").user)
    usd = pool_create(actor=finance, consortium=consortium, reference="usd-draft", period="2026-Q1",
                      amount=Decimal("99.50"), currency="USD", valuation_runs=[valued.pk])
    pool_mark_paid(actor=finance, pool=pools["issued"], payment_reference="SEPA-1")
    return {**pools, "usd": usd}


def _text(page: str, testid: str) -> str:
    """The text of the element marked ``testid``, tags left out."""
    found = re.search(rf'data-testid="{testid}">(.*?)</(?:td|div|span|p)>', page, re.S)
    return re.sub(r"<[^>]+>", "", found.group(1)).strip() if found else ""


@pytest.mark.parametrize("role", ["finance", "governance", "auditor"])
def test_staff_see_pools_checkpoint_valuations_and_participants(role, member, consortium, settled, valued):
    page = _client(member(role)).get("/c/acme/").content.decode()
    assert f"You are <strong>{role}</strong> here" in page and "Participants see: own figures only" in page
    counts = [_text(page, f"pools-{state}") for state in ("draft", "drafted", "approved", "issued", "paid")]
    assert counts == ["1", "1", "1", "0", "1"] and 'href="/c/acme/pools/?status=paid">1</a>' in page
    assert _text(page, "issued-EUR") == "1000.00 EUR" and _text(page, "paid-EUR") == "1000.00 EUR"
    assert _text(page, "issued-USD") == "0.00 USD"
    latest = Checkpoint.objects.order_by("-tree_size").first()
    assert f"Tree size <strong>{latest.tree_size}</strong>" in page and bytes(latest.root).hex()[:16] in page
    assert _text(page, "training-runs-count") == "1" and _text(page, "valuation-runs-count") == "1"
    assert f"/c/acme/valuations/{valued.pk}/" in page and '<span class="badge succeeded">' in page
    for slug in ("alpha", "beta", "gamma"):
        assert f"<td>{slug}</td>" in page
    csv = _client(member(role)).get("/c/acme/", {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv") and "Participant,Slug" in csv.content.decode()


def test_a_participant_sees_its_own_latest_figures_and_its_pages(member, consortium, settled, valued):
    client = _client(member("participant"))
    page = client.get("/c/acme/").content.decode()
    statement = settled["issued"].statements.get(participant__slug="alpha")
    score = valued.scores.get(participant__slug="alpha")
    assert _text(page, "own-statement-amount") == f"{statement.amount:.2f} EUR"
    assert f"/c/acme/statements/{statement.pk}/" in page
    assert _text(page, "own-contribution") == format(score.value, ".6g")
    assert f"[{format(score.ci_low, '.6g')}, {format(score.ci_high, '.6g')}]" in page
    for name in ("contributions-page", "statements", "disputes", "checkpoints"):
        assert f'href="/c/acme/{name.replace("-page", "")}/"' in page
    assert "issued-EUR" not in page and "Participants</h2>" not in page and "beta" not in page
    assert "Latest ledger checkpoint" in page
    assert client.get("/c/acme/", {"format": "csv"})["Content-Type"].startswith("text/html")


def test_a_participant_without_figures_yet_is_told_so(member, consortium):
    page = _client(member("participant")).get("/c/acme/").content.decode()
    assert "No statement issued to you yet." in page and "No valuation has credited you yet." in page
    assert "No checkpoint signed yet." in page


def test_the_overview_is_refused_to_visitors_and_other_consortia(consortium):
    outsider = _client(MembershipFactory(role="finance", consortium=ConsortiumFactory(slug="other")).user)
    assert outsider.get("/c/acme/").status_code == 404
    response = Client().get("/c/acme/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def _queries(client) -> int:
    client.get("/c/acme/")
    with CaptureQueriesContext(connection) as context:
        assert client.get("/c/acme/").status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize("role", ["finance", "participant"])
def test_the_overview_reads_in_a_fixed_number_of_queries(
        role, member, consortium, participants, valued, django_assert_num_queries, django_capture_on_commit_callbacks):
    client = _client(member(role))
    pools_in_every_state(consortium, valued)
    small = _queries(client)
    assert small <= 14
    more = participants + [ParticipantFactory(consortium=consortium) for _ in range(5)]
    finance = Principal(user=MembershipFactory(consortium=consortium, role="finance").user)
    with django_capture_on_commit_callbacks(execute=True):
        runs = [valued_run(consortium, more, seed=seed) for seed in (2, 3)]
    for i, currency in enumerate(["EUR", "USD", "CHF", "EUR"]):
        pool_create(actor=finance, consortium=consortium, reference=f"more-{i}", period="2026-Q2",
                    amount=Decimal("10.00"), currency=currency, valuation_runs=[run.pk for run in runs])
    with django_assert_num_queries(small):
        client.get("/c/acme/")
