"""Statement downloads over HTTP: content types and file names, and who may download what
(a participant its own issued statements only; staff and read keys all; other keys none)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from tests.factories import ApiKeyFactory, MembershipFactory
from tests.incentives.worlds import pools_in_every_state

pytestmark = pytest.mark.django_db

KINDS = {"json": "application/json", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}


@pytest.fixture
def pools(consortium, vrun):
    return pools_in_every_state(consortium, vrun)


def _url(statement, kind: str) -> str:
    return f"/api/v1/statements/{statement.pk}/document.{kind}"


def _participant(consortium, slug: str) -> APIClient:
    client = APIClient()
    participant = consortium.participants.get(slug=slug)
    client.force_authenticate(MembershipFactory(consortium=consortium, role="participant",
                                                participant=participant).user)
    return client


def _key(consortium, scope: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory(consortium=consortium, scopes=[scope]).raw_key}")
    return client


@pytest.mark.parametrize("kind", KINDS)
def test_a_participant_downloads_its_own_statement_as_an_attachment(consortium, pools, kind):
    alpha = pools["issued"].statements.get(participant__slug="alpha")
    response = _participant(consortium, "alpha").get(_url(alpha, kind))
    assert response.status_code == 200
    assert response["Content-Type"] == KINDS[kind]
    assert response["Content-Disposition"] == f'attachment; filename="statement-pool-issued-alpha-v1.{kind}"'


def test_the_downloads_carry_the_same_amount(consortium, pools, staff):
    alpha = pools["issued"].statements.get(participant__slug="alpha")
    auditor = staff.client("auditor")
    document = json.loads(auditor.get(_url(alpha, "json")).content)
    rows = dict(csv.reader(io.StringIO(auditor.get(_url(alpha, "csv")).content.decode())))
    assert document["statement"]["amount"] == f"{alpha.amount:.2f}"
    assert rows["Amount"] == f"{alpha.amount:.2f} EUR" and rows["Document SHA-256"] == document["document_sha256"]
    assert auditor.get(_url(alpha, "pdf")).content.startswith(b"%PDF-")


@pytest.mark.parametrize("kind", KINDS)
def test_a_participant_gets_404_for_another_participants_statement_and_for_its_own_draft(consortium, pools, kind):
    beta = pools["issued"].statements.get(participant__slug="beta")
    draft = pools["drafted"].statements.get(participant__slug="alpha")
    alpha = _participant(consortium, "alpha")
    for statement in (beta, draft):
        response = alpha.get(_url(statement, kind))
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json") and set(response.json()) == {"error"}


@pytest.mark.parametrize("caller", ["drafter", "governance", "auditor"])
def test_staff_download_every_statement_of_their_consortium_drafts_included(pools, staff, caller):
    draft = pools["drafted"].statements.get(participant__slug="beta")
    response = staff.client(caller).get(_url(draft, "json"))
    assert response.status_code == 200
    assert response.json()["ledger"]["entry"] is None and response.json()["statement"]["status"] == "draft"


def test_a_read_key_downloads_and_an_ingest_key_is_refused(consortium, pools):
    beta = pools["issued"].statements.get(participant__slug="beta")
    assert _key(consortium, "read").get(_url(beta, "csv")).status_code == 200
    refused = _key(consortium, "ingest").get(_url(beta, "pdf"))
    assert refused.status_code == 403 and set(refused.json()) == {"error"}


def test_an_accept_header_for_the_file_type_still_gets_the_json_error_body(consortium, pools):
    beta = pools["issued"].statements.get(participant__slug="beta")
    response = _participant(consortium, "alpha").get(_url(beta, "pdf"), HTTP_ACCEPT="application/pdf")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")


def test_anonymous_is_401_and_an_unknown_statement_404(pools, staff):
    alpha = pools["issued"].statements.get(participant__slug="alpha")
    assert APIClient().get(_url(alpha, "json")).status_code == 401
    missing = staff.client("auditor").get("/api/v1/statements/00000000-0000-0000-0000-000000000000/document.pdf")
    assert missing.status_code == 404
