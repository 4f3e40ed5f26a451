"""Revenue pool pages: the list with its filter and the form that opens a pool, a pool with
its statements and totals, and its actions (draft, approve, issue, mark paid) with the
four-eyes refusals shown and nothing written."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from incentives.models import PoolApproval, RevenuePool, Statement
from incentives.services import policy_change, pool_approve, pool_create, pool_statements_draft
from ledger.models import LedgerEntry
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.incentives.conftest import valued_run
from tests.incentives.worlds import pools_in_every_state

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_user(staff):
    """``as_user(name)`` → a client signed in as one of ``staff``'s users."""
    return lambda name: _client(staff.users[name])


@pytest.fixture
def outsider():
    return _client(MembershipFactory(role="finance", consortium=ConsortiumFactory(slug="other")).user)


def _pool(consortium, vrun, staff, *, reference="2026-q1", amount="1000.00", draft=True, approvals=0, policy=None):
    pool = pool_create(actor=staff.principal("drafter"), consortium=consortium, reference=reference, period="2026-Q1",
                       amount=Decimal(amount), currency="EUR", valuation_runs=[vrun.pk], policy=policy)
    if draft:
        pool = pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    for name in ("first", "second")[:approvals]:
        pool = pool_approve(actor=staff.principal(name), pool=pool)
    return pool


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def _field_errors(page: str, field: str) -> str:
    found = re.search(rf'<ul class="errorlist" id="id_{field}-errors"[^>]*>(.*?)</ul>', page, re.S)
    return found.group(1) if found else ""


# -- the list --------------------------------------------------------------------------


def test_it_lists_pools_with_status_badges_approvals_filter_and_csv(consortium, vrun, staff, as_user):
    pools = pools_in_every_state(consortium, vrun)
    client = as_user("auditor")
    page = client.get("/c/acme/pools/").content.decode()
    for state in ("drafted", "approved", "issued"):
        assert f'<span class="badge {state}">' in page and f"pool-{state}" in page
    assert page.count("1000.00 EUR") == 3
    assert "Open a revenue pool" not in page  # auditors read only
    filtered = client.get("/c/acme/pools/", {"status": "approved"}).content.decode()
    assert "pool-approved" in filtered and "pool-drafted" not in filtered
    rows = _csv(client.get("/c/acme/pools/", {"status": "issued", "format": "csv"}))
    assert rows[0] == ["Reference", "Period", "Amount", "Currency", "Status", "Approvals", "Created (UTC)", "Created by"]
    assert rows[1][:6] == ["pool-issued", "2026-Q1", "1000.00", "EUR", "issued", "2"] and len(rows) == 2
    assert client.get("/c/acme/pools/", {"status": "lost"}).status_code == 200  # shown next to the filter
    assert pools["issued"].status == "issued"


def test_the_pool_list_reads_in_a_fixed_number_of_queries(consortium, vrun, staff, as_user, django_assert_num_queries):
    client = as_user("first")
    _pool(consortium, vrun, staff, reference="p-0", approvals=1)
    small = queries(client, "/c/acme/pools/")
    assert small <= 11
    for i in range(1, 6):
        _pool(consortium, vrun, staff, reference=f"p-{i}", approvals=i % 3)
    with django_assert_num_queries(small):
        page = client.get("/c/acme/pools/").content.decode()
    assert "p-5" in page


def _read_sql(client, url: str) -> str:
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return " ".join(query["sql"] for query in context.captured_queries)


def test_the_pool_pages_leave_the_heavy_columns_unread(consortium, vrun, staff, as_user):
    """A run's inputs (megabytes at 200 participants and 50 rounds) and each statement's
    per-round figures are shown on neither page: the form's run choices, the pool's runs and
    its statements are read without them."""
    pool = _pool(consortium, vrun, staff, approvals=1)
    client = as_user("first")
    for url in ("/c/acme/pools/", f"/c/acme/pools/{pool.pk}/"):
        sql = _read_sql(client, url)
        assert '"valuation_valuationrun"' in sql  # the runs are read ...
        assert '"inputs"' not in sql and '"details"' not in sql and '"per_round"' not in sql  # ... not their inputs
    page = client.get("/c/acme/pools/").content.decode()
    assert f"({str(vrun.pk)[:8]})" in page  # the run is still offered, with its label


# -- opening a pool --------------------------------------------------------------------


def _open(client, vrun, **fields):
    return client.post("/c/acme/pools/", {"reference": "2026-q2", "period": "2026-Q2", "amount": "250000.00",
                                          "currency": "EUR", "valuation_runs": [str(vrun.pk)], **fields})


def test_finance_opens_a_pool_from_the_form(consortium, vrun, staff, as_user):
    client = as_user("drafter")
    page = client.get("/c/acme/pools/").content.decode()
    assert "Open a revenue pool" in page and str(vrun.pk)[:8] in page
    response = _open(client, vrun)
    pool = RevenuePool.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/c/acme/pools/{pool.pk}/"
    assert (pool.amount, pool.currency, pool.status) == (Decimal("250000.00"), "EUR", "draft")
    assert list(pool.valuation_runs.all()) == [vrun]
    page = client.get(response["Location"]).content.decode()
    assert "Pool 2026-q2 opened" in page and "250000.00 EUR" in page and "Draft statements" in page


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"amount": "0.001"}, "amount", "EUR amounts have at most 2 decimal(s); 0.001 does not."),
    ({"amount": "-5.00"}, "amount", "amount must be a positive number."),
    ({"amount": "abc"}, "amount", "Enter a number."),
    ({"currency": "XYZ"}, "currency", "is not an ISO 4217 currency code"),
    ({"reference": "not a slug"}, "reference", "Enter a valid"),
    ({"valuation_runs": []}, "valuation_runs", "This field is required."),
])
def test_a_refused_pool_shows_the_error_next_to_its_field_keeps_the_input_and_writes_nothing(
        fields, field, message, consortium, vrun, staff, as_user):
    response = _open(as_user("drafter"), vrun, **fields)
    page = response.content.decode()
    assert response.status_code == 400
    assert message in _field_errors(page, field)
    assert 'name="period" value="2026-Q2"' in page
    for name, value in fields.items():
        if isinstance(value, str):
            assert f'name="{name}" value="{value}"' in page
    assert not RevenuePool.objects.exists() and not consortium.allocation_policies.exists()


def test_a_reference_already_used_is_shown_on_the_reference_field(consortium, vrun, staff, as_user):
    _pool(consortium, vrun, staff, reference="2026-q2", draft=False)
    response = _open(as_user("drafter"), vrun)
    assert response.status_code == 400
    assert "already has a pool named" in _field_errors(response.content.decode(), "reference")
    assert RevenuePool.objects.count() == 1


def test_only_succeeded_runs_of_this_consortium_are_offered(consortium, vrun, staff, as_user):
    other = ConsortiumFactory(slug="third")
    foreign = valued_run(other, [ParticipantFactory(consortium=other, slug="x"), ParticipantFactory(consortium=other)])
    response = _open(as_user("drafter"), foreign)
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not RevenuePool.objects.exists()


@pytest.mark.parametrize("name", ["governance", "auditor"])
def test_governance_and_auditors_read_pools_but_cannot_open_one(name, consortium, vrun, staff, as_user):
    client = as_user(name)
    assert client.get("/c/acme/pools/").status_code == 200
    assert _open(client, vrun).status_code == 403
    assert not RevenuePool.objects.exists()


# -- a pool ----------------------------------------------------------------------------


def test_the_pool_page_shows_statements_whose_amounts_sum_to_the_pool(consortium, vrun, staff, as_user):
    pool = _pool(consortium, vrun, staff, amount="1000.01", approvals=2)
    page = as_user("auditor").get(f"/c/acme/pools/{pool.pk}/").content.decode()
    amounts = [Decimal(a) for a in re.findall(r'data-testid="statement-amount">([\d.]+)</td>', page)]
    assert len(amounts) == 5 and sum(amounts) == Decimal("1000.01")
    assert '<td class="num" data-testid="statements-total">1000.01 EUR</td>' in page
    assert 'data-testid="pool-amount">1000.01 EUR<' in page and '<span class="badge approved"' in page
    for statement in pool.statements.select_related("participant"):
        assert f'/c/acme/statements/{statement.pk}/">{statement.participant.slug}</a>' in page
    assert page.count('data-testid="approval"') == 2
    assert "<form" not in page.split("<main", 1)[1]  # auditors read only: no buttons
    rows = _csv(as_user("auditor").get(f"/c/acme/pools/{pool.pk}/", {"format": "csv"}))
    assert rows[0][-1] == "Amount (EUR)" and sum(Decimal(row[-1]) for row in rows[1:]) == Decimal("1000.01")


def test_a_reserve_is_shown_and_reconciles_with_the_pool(consortium, vrun, staff, as_user):
    policy = policy_change(actor=staff.principal("governance"), consortium=consortium,
                           reserve_rate=Decimal("0.05"), note="A reserve for disputes.")
    pool = _pool(consortium, vrun, staff, amount="1000.00", policy=policy)
    page = as_user("drafter").get(f"/c/acme/pools/{pool.pk}/").content.decode()
    reconciliation = re.search(r'data-testid="reconciliation">(.*?)</table>', page, re.S).group(1)
    assert "50.00 EUR" in reconciliation and "950.00 EUR" in reconciliation and "1000.00 EUR" in reconciliation
    assert f"Allocation policy, version {policy.version}" in page and "0.05" in page


def test_the_pool_page_reads_in_a_fixed_number_of_queries(
        consortium, vrun, staff, as_user, django_assert_num_queries, django_capture_on_commit_callbacks):
    client = as_user("first")
    small_pool = _pool(consortium, vrun, staff, reference="small", approvals=1)
    small = queries(client, f"/c/acme/pools/{small_pool.pk}/")
    assert small <= 16
    more = list(consortium.participants.all()) + [ParticipantFactory(consortium=consortium) for _ in range(4)]
    with django_capture_on_commit_callbacks(execute=True):
        bigger_run = valued_run(consortium, more, seed=4)
    large_pool = _pool(consortium, bigger_run, staff, reference="large", approvals=1)
    assert large_pool.statements.count() == 9
    with django_assert_num_queries(small):
        client.get(f"/c/acme/pools/{large_pool.pk}/")


@pytest.mark.parametrize("path", ["/c/acme/pools/", "/c/acme/pools/{pool}/"])
def test_pool_pages_are_refused_to_participants_visitors_and_other_consortia(
        path, consortium, vrun, staff, member, outsider):
    pool = _pool(consortium, vrun, staff)
    url = path.format(pool=pool.pk)
    assert _client(member("participant")).get(url).status_code == 403
    assert Client().get(url).status_code == 302
    assert outsider.get(url).status_code == 404
    if "{pool}" in path:
        assert outsider.get(url.replace("/c/acme/", "/c/other/")).status_code == 404


# -- actions ---------------------------------------------------------------------------


def _act(client, pool, action, **fields):
    return client.post(f"/c/acme/pools/{pool.pk}/{action}", fields)


def _written() -> tuple:
    return (PoolApproval.objects.count(), Statement.objects.count(), LedgerEntry.objects.count(),
            tuple(RevenuePool.objects.order_by("pk").values_list("status", flat=True)))


def test_finance_drafts_approves_twice_issues_and_marks_paid(consortium, vrun, staff, as_user):
    pool = _pool(consortium, vrun, staff, draft=False)
    drafter, first, second = as_user("drafter"), as_user("first"), as_user("second")
    response = _act(drafter, pool, "draft")
    assert response.status_code == 302 and response["Location"] == f"/c/acme/pools/{pool.pk}/"
    page = drafter.get(response["Location"]).content.decode()
    assert "Statements drafted for 2026-q1" in page and "Approve statements" not in page
    assert "You drafted these statements" in page
    assert "Approve statements" in first.get(f"/c/acme/pools/{pool.pk}/").content.decode()
    _act(first, pool, "approve")
    page = first.get(f"/c/acme/pools/{pool.pk}/").content.decode()
    assert "You approved 2026-q1 (1 of 2 approvals)" in page and "Approve statements" not in page
    _act(second, pool, "approve")
    assert "Issue pool" in first.get(f"/c/acme/pools/{pool.pk}/").content.decode()
    _act(drafter, pool, "issue")
    page = drafter.get(f"/c/acme/pools/{pool.pk}/").content.decode()
    assert '<span class="badge issued" data-testid="pool-status">issued</span>' in page and "Mark paid" in page
    response = _act(drafter, pool, "paid", payment_reference="SEPA-2026-04")
    pool.refresh_from_db()
    assert response.status_code == 302 and pool.status == "paid"


@pytest.mark.parametrize(("approvals", "name", "action", "status", "message"), [
    (0, "drafter", "approve", 403, "Four eyes: you drafted these statements"),
    (1, "first", "approve", 409, "You have already approved this pool"),
    (1, "first", "issue", 409, "Issuing takes 2 approvals of the drafted statements; the pool has 1."),
    (0, "first", "paid", 409, "Only an issued pool can be marked paid."),
])
def test_a_refused_action_shows_the_services_message_and_writes_nothing(
        approvals, name, action, status, message, consortium, vrun, staff, as_user):
    pool = _pool(consortium, vrun, staff, approvals=approvals)
    before = _written()
    fields = {"payment_reference": "SEPA-1"} if action == "paid" else {}
    response = _act(as_user(name), pool, action, **fields)
    assert response.status_code == status
    assert message in response.content.decode() and 'class="error"' in response.content.decode()
    assert _written() == before


def test_marking_paid_without_a_reference_keeps_the_pool_issued_and_shows_the_field_error(
        consortium, vrun, staff, as_user):
    pool = pools_in_every_state(consortium, vrun)["issued"]
    before = _written()
    response = _act(as_user("drafter"), pool, "paid", payment_reference="")
    assert response.status_code == 400
    assert "This field is required." in _field_errors(response.content.decode(), "payment_reference")
    assert _written() == before


@pytest.mark.parametrize("name", ["governance", "auditor"])
def test_roles_without_the_capability_cannot_act_on_a_pool(name, consortium, vrun, staff, as_user):
    pool = _pool(consortium, vrun, staff)
    before = _written()
    assert _act(as_user(name), pool, "approve").status_code == 403
    assert _written() == before


def test_actions_answer_404_for_an_unknown_action_or_outsiders_and_405_to_a_get(
        consortium, vrun, staff, as_user, member, outsider):
    pool = _pool(consortium, vrun, staff)
    before = _written()
    assert _act(as_user("first"), pool, "delete").status_code == 404
    assert as_user("first").get(f"/c/acme/pools/{pool.pk}/approve").status_code == 405
    assert _act(outsider, pool, "approve").status_code == 404
    assert _act(_client(member("participant")), pool, "approve").status_code == 403
    assert _act(Client(), pool, "approve").status_code == 302
    assert _written() == before


def test_a_pool_is_not_reachable_under_another_consortium_of_the_same_user(consortium, vrun, staff):
    pool = _pool(consortium, vrun, staff)
    user = staff.users["first"]
    MembershipFactory(user=user, role="finance", consortium=ConsortiumFactory(slug="second-home"))
    client = _client(user)
    before = _written()
    assert client.get(f"/c/second-home/pools/{pool.pk}/").status_code == 404
    assert client.post(f"/c/second-home/pools/{pool.pk}/approve").status_code == 404
    assert _written() == before
