"""The dispute API over HTTP: who may file, act and read; the attachment's size limit and
download scoping; a dispute from filing to an upheld decision."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from incentives.models import Dispute
from tests.factories import ConsortiumFactory, MembershipFactory
from tests.incentives.worlds import disputes_in_every_state, pools_in_every_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(consortium, vrun, staff):
    pools = pools_in_every_state(consortium, vrun)
    issued = {s.participant.slug: s for s in pools["issued"].statements.select_related("participant", "pool")}
    disputes = disputes_in_every_state(consortium, issued, governance=staff.principal("governance"))
    draft = pools["drafted"].statements.get(participant__slug="alpha")
    return {"issued": issued, "disputes": disputes, "draft": draft}


def _client_of(consortium, slug: str) -> APIClient:
    client = APIClient()
    client.force_authenticate(MembershipFactory(consortium=consortium, role="participant",
                                                participant=consortium.participants.get(slug=slug)).user)
    return client


def _file_url(statement) -> str:
    return f"/api/v1/statements/{statement.pk}/disputes/"


def test_a_participant_files_on_its_own_statement_and_reads_the_trail(consortium, world):
    alpha = _client_of(consortium, "alpha")
    response = alpha.post(_file_url(world["issued"]["alpha"]), {"line": "share", "reason": "Share too small."},
                          format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["line"], body["participant"], body["attachment"]) == ("open", "share", "alpha", None)
    assert [e["action"] for e in body["events"]] == ["filed"] and body["overdue"] is False
    assert alpha.get(f"/api/v1/disputes/{body['id']}/").json()["id"] == body["id"]


def test_filing_on_another_participants_statement_or_a_draft_is_not_found(consortium, world):
    alpha = _client_of(consortium, "alpha")
    before = Dispute.objects.count()
    for statement in (world["issued"]["beta"], world["draft"]):
        response = alpha.post(_file_url(statement), {"line": "amount", "reason": "x"}, format="json")
        assert response.status_code == 404, response.json()
    assert Dispute.objects.count() == before


def test_filing_the_same_line_twice_is_409(consortium, world):
    response = _client_of(consortium, "alpha").post(_file_url(world["issued"]["alpha"]),
                                                    {"line": "amount", "reason": "again"}, format="json")
    assert response.status_code == 409 and "undecided dispute" in response.json()["error"]["message"]


@pytest.mark.parametrize("role", ["drafter", "governance", "auditor"])
def test_staff_cannot_file(world, staff, role):
    response = staff.client(role).post(_file_url(world["issued"]["alpha"]), {"line": "share", "reason": "x"},
                                       format="json")
    assert response.status_code == 403


def test_a_participant_lists_only_its_own_disputes_and_staff_all(consortium, world, staff):
    mine = _client_of(consortium, "alpha").get("/api/v1/disputes/").json()["results"]
    assert {d["participant"] for d in mine} == {"alpha"} and len(mine) == 3
    everything = staff.client("auditor").get("/api/v1/disputes/").json()["results"]
    assert len(everything) == 4
    decided = staff.client("auditor").get("/api/v1/disputes/?status=decided").json()["results"]
    assert [d["outcome"] for d in decided] == ["rejected"]
    assert staff.client("auditor").get("/api/v1/disputes/?status=lost").status_code == 400
    beta_id = world["disputes"]["beta"].pk
    assert _client_of(consortium, "alpha").get(f"/api/v1/disputes/{beta_id}/").status_code == 404


@pytest.mark.parametrize("action", ["review/", "revaluation/", "decide/"])
@pytest.mark.parametrize("role", ["drafter", "auditor"])
def test_finance_and_auditors_read_but_may_not_act(world, staff, role, action):
    url = f"/api/v1/disputes/{world['disputes']['open'].pk}/"
    assert staff.client(role).get(url).status_code == 200
    assert staff.client(role).post(url + action, {"outcome": "rejected"}, format="json").status_code == 403


def test_a_participant_may_not_act_on_its_own_dispute(consortium, world):
    url = f"/api/v1/disputes/{world['disputes']['reviewed'].pk}/decide/"
    assert _client_of(consortium, "alpha").post(url, {"outcome": "rejected"}, format="json").status_code == 403


def test_governance_reviews_orders_a_revaluation_compares_and_upholds(
        consortium, world, staff, django_capture_on_commit_callbacks):
    governance = staff.client("governance")
    dispute = world["disputes"]["open"]
    url = f"/api/v1/disputes/{dispute.pk}/"
    assert governance.post(f"{url}decide/", {"outcome": "rejected"}, format="json").status_code == 409  # unreviewed
    assert governance.post(f"{url}review/", {"note": "Looking."}, format="json").json()["status"] == "under_review"
    with django_capture_on_commit_callbacks(execute=True):
        ordered = governance.post(f"{url}revaluation/", {"method": "exact"}, format="json")
    assert ordered.status_code == 200, ordered.json()
    assert ordered.json()["status"] == "revaluation_ordered" and ordered.json()["revaluation"]
    compared = governance.get(f"{url}comparison/").json()
    assert compared["new_run"]["status"] == "succeeded" and compared["new_run"]["method"] == "exact"
    assert {row["participant"] for row in compared["rows"]} >= {"alpha", "beta"}
    assert all(row["outside_old_interval"] is False for row in compared["rows"])
    original = world["issued"]["alpha"]
    amount = f"{original.amount + Decimal('5.00'):.2f}"
    decided = governance.post(f"{url}decide/", {"outcome": "upheld", "amount": amount, "note": "ok"}, format="json")
    assert decided.status_code == 200, decided.json()
    body = decided.json()
    assert (body["outcome"], body["adjustment"], body["currency"]) == ("upheld", "5.00", "EUR")
    assert all(body["ledger_entries"].values())
    revised = _client_of(consortium, "alpha").get(f"/api/v1/statements/{body['revised_statement']}/").json()
    assert (revised["version"], revised["supersedes"], revised["amount"]) == (2, str(original.pk), amount)
    old = _client_of(consortium, "alpha").get(f"/api/v1/statements/{original.pk}/").json()
    assert old["status"] == "superseded"  # still readable
    again = governance.post(f"{url}decide/", {"outcome": "rejected"}, format="json")
    assert again.status_code == 409 and "already decided" in again.json()["error"]["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"outcome": "upheld", "amount": "10.005"}, "amount"),
    ({"outcome": "upheld", "amount": "-1.00"}, "amount"),
    ({"outcome": "upheld"}, "amount"),
    ({"outcome": "upheld", "amount": "1e400"}, "amount"),
    ({"outcome": "maybe"}, "outcome"),
])
def test_a_bad_decision_is_400_naming_the_field(world, staff, body, field):
    url = f"/api/v1/disputes/{world['disputes']['reviewed'].pk}/decide/"
    response = staff.client("governance").post(url, body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"], response.json()
    assert Dispute.objects.get(pk=world["disputes"]["reviewed"].pk).status == "under_review"


def test_an_attachment_over_the_limit_is_413_and_nothing_is_filed(consortium, world, settings):
    settings.UPLOAD_MAX_BYTES = 100
    before = Dispute.objects.count()
    response = _client_of(consortium, "alpha").post(
        _file_url(world["issued"]["alpha"]),
        {"line": "share", "reason": "x", "attachment": SimpleUploadedFile("e.pdf", b"%" * 101, "application/pdf")},
        format="multipart")
    assert response.status_code == 413, response.json()
    assert Dispute.objects.count() == before


def test_an_attachment_is_uploaded_and_downloaded_only_by_those_who_see_the_dispute(consortium, world, staff):
    alpha = _client_of(consortium, "alpha")
    created = alpha.post(_file_url(world["issued"]["alpha"]),
                         {"line": "share", "reason": "see file",
                          "attachment": SimpleUploadedFile("proof.pdf", b"%PDF-1.7 proof", "application/pdf")},
                         format="multipart")
    assert created.status_code == 201, created.json()
    assert created.json()["attachment"]["size"] == len(b"%PDF-1.7 proof")
    url = f"/api/v1/disputes/{created.json()['id']}/attachment"
    download = alpha.get(url)
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"%PDF-1.7 proof"
    assert "attachment" in download["Content-Disposition"] and download["X-Content-Type-Options"] == "nosniff"
    assert staff.client("auditor").get(url).status_code == 200
    assert _client_of(consortium, "beta").get(url).status_code == 404
    outsider = APIClient()
    outsider.force_authenticate(MembershipFactory(consortium=ConsortiumFactory(), role="finance").user)
    assert outsider.get(url).status_code == 404
    no_file = f"/api/v1/disputes/{world['disputes']['reviewed'].pk}/attachment"
    assert alpha.get(no_file).status_code == 404

