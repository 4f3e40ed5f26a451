"""Statements (/c/<slug>/statements/) and a statement's page: staff see every statement with
filters, a participant only its own organisation's issued ones; the downloads work with a
sign-in session; a participant may dispute each line of its current issued statement (never
in the PDF)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext

from consortium.access import Principal
from incentives.documents import TEMPLATE, statement_page_context, statement_pdf
from incentives.models import Statement
from incentives.services import dispute_decide, dispute_file, dispute_review
from ledger.currencies import money_text
from tests.factories import ConsortiumFactory, MembershipFactory
from tests.incentives.worlds import pools_in_every_state

pytestmark = pytest.mark.django_db

URL = "/c/acme/statements/"


@pytest.fixture
def pools(consortium, vrun):
    return pools_in_every_state(consortium, vrun)


@pytest.fixture
def issued(pools):
    return {s.participant.slug: s for s in pools["issued"].statements.select_related("participant", "pool")}


def _participant(consortium, slug="alpha"):
    return MembershipFactory(consortium=consortium, role="participant",
                             participant=consortium.participants.get(slug=slug)).user


def _get(client, user, url):
    client.force_login(user)
    response = client.get(url)
    return response, response.content.decode()


def _listed(response) -> list[Statement]:
    return [row["statement"] for row in response.context["rows"]]


def _csv(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("role", ["finance", "governance", "auditor"])
def test_staff_see_every_statement_with_amount_version_status_and_downloads(client, member, pools, issued, role):
    response, page = _get(client, member(role), URL)
    assert response.status_code == 200
    assert len(_listed(response)) == 15  # three pools of five participants, drafts included
    alpha = issued["alpha"]
    assert f"{money_text(alpha.amount, 'EUR')} EUR" in page
    assert f"/api/v1/statements/{alpha.pk}/document.pdf" in page and f"/api/v1/statements/{alpha.pk}/document.csv" in page
    assert f"/c/acme/statements/{alpha.pk}/" in page
    assert '<span class="badge issued">Issued</span>' in page and '<span class="badge draft">Draft</span>' in page


def test_staff_filter_by_pool_participant_status_and_version(client, member, pools):
    user = member("finance")
    assert {s.pool.reference for s in _listed(_get(client, user, URL + "?pool=pool-issued")[0])} == {"pool-issued"}
    alpha = _listed(_get(client, user, URL + "?participant=alpha")[0])
    assert len(alpha) == 3 and {s.participant.slug for s in alpha} == {"alpha"}
    assert len(_listed(_get(client, user, URL + "?status=issued")[0])) == 5
    assert _listed(_get(client, user, URL + "?version=2")[0]) == []
    page = _get(client, user, URL + "?participant=alpha&pool=pool-issued")[1]
    assert '<option value="alpha" selected>' in page and '<option value="beta">' in page  # the filter keeps its value
    assert '<option value="pool-issued" selected>pool-issued (2026-Q1)</option>' in page
    response, page = _get(client, user, URL + "?status=lost")
    assert response.status_code == 200 and "Select a valid choice" in page and len(_listed(response)) == 15


def test_a_participant_sees_only_its_own_issued_statements(client, consortium, pools, issued):
    response, page = _get(client, _participant(consortium), URL)
    assert [s.pk for s in _listed(response)] == [issued["alpha"].pk]
    assert str(issued["beta"].pk) not in page and "badge draft" not in page and 'value="draft"' not in page
    assert 'name="participant"' not in page  # no participant filter for a participant
    response, _ = _get(client, _participant(consortium), URL + "?participant=beta")
    assert [s.pk for s in _listed(response)] == [issued["alpha"].pk]


def test_the_list_downloads_as_csv_with_the_filters(client, member, consortium, pools, issued):
    rows = _csv(_get(client, member("auditor"), URL + "?pool=pool-issued&format=csv")[0])
    assert len(rows) == 5
    alpha = next(row for row in rows if row["Participant"] == "alpha")
    assert (alpha["Amount"], alpha["Currency"], alpha["Version"], alpha["Status"]) == (
        money_text(issued["alpha"].amount, "EUR"), "EUR", "1", "issued")
    mine = _csv(_get(client, _participant(consortium), URL + "?format=csv")[0])
    assert [row["Participant"] for row in mine] == ["alpha"]


def test_a_revised_statement_shows_the_superseded_version_and_links_the_new_one(client, consortium, issued, staff):
    governance = staff.principal("governance")
    alpha = Principal(user=_participant(consortium))
    dispute = dispute_file(actor=alpha, statement=issued["alpha"], line="amount", reason="Too low.")
    dispute_review(actor=governance, dispute=dispute)
    decided = dispute_decide(actor=governance, dispute=dispute, outcome="upheld",
                             amount=issued["alpha"].amount + Decimal("1.00"))
    response, page = _get(client, alpha.user, URL)
    listed = _listed(response)
    assert [(s.version, s.status) for s in listed] == [(1, "superseded"), (2, "issued")]
    assert f'href="/c/acme/statements/{decided.revised_statement_id}/">version 2</a>' in page
    assert "(revised)" in page


def test_statement_downloads_work_with_a_session_sign_in(client, consortium, issued):
    client.force_login(_participant(consortium))
    alpha = issued["alpha"]
    pdf = client.get(f"/api/v1/statements/{alpha.pk}/document.pdf", HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    csv_body = client.get(f"/api/v1/statements/{alpha.pk}/document.csv").content.decode()
    assert f"{money_text(alpha.amount, 'EUR')} EUR" in csv_body
    assert client.get(f"/api/v1/statements/{alpha.pk}/document.json").json()["statement"]["participant"] == "alpha"
    assert client.get(f"/api/v1/statements/{issued['beta'].pk}/document.pdf").status_code == 404


def test_a_participant_gets_a_dispute_link_per_line_of_its_current_statement(client, consortium, issued):
    user = _participant(consortium)
    alpha = issued["alpha"]
    response, page = _get(client, user, f"{URL}{alpha.pk}/")
    assert response.status_code == 200
    for line, label in [("amount", "Amount"), ("contribution", "Contribution"), ("share", "Share"),
                        ("data_volume", "Data volume (examples)")]:
        assert (f'href="/c/acme/statements/{alpha.pk}/dispute?line={line}">Dispute this line'
                f'<span class="visually-hidden"> ({label})</span>') in page
    dispute = dispute_file(actor=Principal(user=user), statement=alpha, line="amount", reason="Too low.")
    page = _get(client, user, f"{URL}{alpha.pk}/")[1]
    assert f'href="/c/acme/disputes/{dispute.pk}/">Dispute open' in page
    assert page.count("Dispute this line") == 3


@pytest.mark.parametrize("role", ["finance", "governance", "auditor"])
def test_staff_get_no_dispute_links(client, member, issued, role):
    response, page = _get(client, member(role), f"{URL}{issued['alpha'].pk}/")
    assert response.status_code == 200 and "Dispute this line" not in page


def test_the_pdf_has_no_dispute_links_and_still_renders(consortium, issued):
    alpha = issued["alpha"]
    context = statement_page_context(statement=alpha)
    rows = [(label, value, {"url": "/dispute", "text": "Dispute this line"}) for label, value in context["rows"]]
    html = render_to_string(TEMPLATE, {**context, "dispute_rows": rows, "for_print": True})
    assert "Dispute this line" not in html
    assert statement_pdf(statement=alpha).startswith(b"%PDF")


def test_statement_page_access(client, member, consortium, pools, issued):
    alpha, draft = issued["alpha"], pools["drafted"].statements.get(participant__slug="alpha")
    assert client.get(f"{URL}{alpha.pk}/").status_code == 302
    assert client.get(URL).status_code == 302 and client.get(URL)["Location"].startswith("/login/")
    participant = _participant(consortium)
    assert _get(client, participant, f"{URL}{issued['beta'].pk}/")[0].status_code == 404
    assert _get(client, participant, f"{URL}{draft.pk}/")[0].status_code == 404
    outsider = MembershipFactory(consortium=ConsortiumFactory(slug="other"), role="finance").user
    assert _get(client, outsider, URL)[0].status_code == 404
    assert _get(client, outsider, f"{URL}{alpha.pk}/")[0].status_code == 404
    for role in ("finance", "governance", "auditor"):
        assert _get(client, member(role), f"{URL}{draft.pk}/")[0].status_code == 200


def _queries(client, user, url) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _more_pools(consortium, vrun) -> None:
    """Three more pools (drafted, approved, issued), renamed so that the next three may be made."""
    for pool in pools_in_every_state(consortium, vrun).values():
        type(pool).objects.filter(pk=pool.pk).update(reference=f"{pool.reference}-{pool.pk.hex[:6]}")


def test_queries_do_not_grow_with_the_number_of_statements(client, consortium, vrun, staff):
    auditor, participant = staff.users["auditor"], _participant(consortium)
    _more_pools(consortium, vrun)
    small = (_queries(client, auditor, URL), _queries(client, participant, URL))
    for _ in range(2):
        _more_pools(consortium, vrun)
    large = (_queries(client, auditor, URL), _queries(client, participant, URL))
    assert len(_listed(_get(client, auditor, URL)[0])) == 45
    assert small == large, (small, large)


def test_the_list_leaves_the_per_round_figures_unread(client, member, pools):
    """Each statement's per-round contributions (50 rounds per run at volume) are on its own
    page and in its documents, not in the list: the list does not read them."""
    client.force_login(member("finance"))
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    sql = " ".join(query["sql"] for query in captured.captured_queries)
    assert '"incentives_statement"."amount"' in sql and '"per_round"' not in sql and '"methods"' not in sql
