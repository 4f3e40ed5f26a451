"""The settlement API over HTTP: a pool from opening to payment, what a participant sees of
the statements, policies, and bad requests answered 4xx with nothing written."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from incentives.models import AllocationPolicy, RevenuePool
from ledger.models import LedgerEntry
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _pool_body(vrun, **fields):
    return {"reference": "2026-q1", "period": "2026-Q1", "amount": "250000.00", "currency": "EUR",
            "valuation_runs": [str(vrun.pk)], **fields}


def _issued(consortium, vrun, staff) -> dict:
    drafter, first, second = staff.client("drafter"), staff.client("first"), staff.client("second")
    created = drafter.post(f"/api/v1/consortia/{consortium.slug}/revenue-pools/", _pool_body(vrun), format="json")
    assert created.status_code == 201, created.json()
    url = f"/api/v1/revenue-pools/{created.json()['id']}/"
    assert drafter.post(f"{url}draft/").json()["status"] == "drafted"
    assert first.post(f"{url}approve/").json()["status"] == "drafted"
    assert second.post(f"{url}approve/").json()["status"] == "approved"
    issued = first.post(f"{url}issue/")
    assert issued.status_code == 200, issued.json()
    return issued.json()


def _participant_client(consortium, slug: str) -> APIClient:
    participant = consortium.participants.get(slug=slug)
    client = APIClient()
    client.force_authenticate(MembershipFactory(consortium=consortium, role="participant",
                                                participant=participant).user)
    return client


def test_a_pool_goes_from_opening_to_payment_and_issuing_twice_answers_the_first_result(consortium, vrun, staff):
    pool = _issued(consortium, vrun, staff)
    assert pool["status"] == "issued" and pool["amount"] == "250000.00" and pool["currency"] == "EUR"
    assert [a["user"] for a in pool["approvals"]] and len(pool["approvals"]) == 2
    url = f"/api/v1/revenue-pools/{pool['id']}/"
    entries = LedgerEntry.objects.count()
    assert staff.client("second").post(f"{url}issue/").json() == pool
    assert LedgerEntry.objects.count() == entries
    statements = staff.client("auditor").get(f"/api/v1/statements/?pool={pool['id']}").json()["results"]
    assert len(statements) == 5
    total = sum(int(s["amount"].replace(".", "")) for s in statements) + int(pool["reserve_amount"].replace(".", ""))
    assert total == 25_000_000  # cents: the pool, exactly
    assert all(s["status"] == "issued" and s["ledger_entry"] for s in statements)
    paid = staff.client("first").post(f"{url}paid/", {"payment_reference": "SEPA-7"}, format="json")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"


def test_a_participant_reads_its_own_issued_statements_only(consortium, vrun, staff):
    alpha = _participant_client(consortium, "alpha")
    drafter = staff.client("drafter")
    created = drafter.post(f"/api/v1/consortia/{consortium.slug}/revenue-pools/",
                           _pool_body(vrun, reference="drafted-only"), format="json")
    pool_id = created.json()["id"]
    drafter.post(f"/api/v1/revenue-pools/{pool_id}/draft/")
    assert alpha.get("/api/v1/statements/").json()["results"] == []  # drafts are not published
    draft = RevenuePool.objects.get(pk=pool_id).statements.get(participant__slug="alpha")
    assert alpha.get(f"/api/v1/statements/{draft.pk}/").status_code == 404

    pool = _issued(consortium, vrun, staff)
    listed = alpha.get("/api/v1/statements/").json()["results"]
    assert [s["participant"] for s in listed] == ["alpha"]
    assert listed[0]["pool"] == pool["id"]
    beta = RevenuePool.objects.get(pk=pool["id"]).statements.get(participant__slug="beta")
    assert alpha.get(f"/api/v1/statements/{beta.pk}/").status_code == 404
    assert alpha.get(f"/api/v1/revenue-pools/{pool['id']}/").status_code == 403
    mine = alpha.get(f"/api/v1/statements/{listed[0]['id']}/").json()
    assert mine["share"].count("/") == 1 and mine["amount"] == listed[0]["amount"]


def test_governance_changes_the_policy_as_a_new_version_recorded_in_the_ledger(consortium, participants, staff):
    governance = staff.client("governance")
    url = f"/api/v1/consortia/{consortium.slug}/policies/"
    changed = governance.post(url, {"reserve_rate": "0.05", "cap_share": "0.5", "note": "Q2 rules"}, format="json")
    assert changed.status_code == 201, changed.json()
    body = changed.json()
    assert (body["version"], body["reserve_rate"], body["cap_share"]) == (2, "0.050000", "0.500000")
    assert LedgerEntry.objects.get(seq=body["ledger_entry"]).body["terms"]["reserve_rate"] == "0.050000"
    listed = _participant_client(consortium, "alpha").get(url).json()["results"]
    assert [p["version"] for p in listed] == [2, 1]


@pytest.mark.parametrize(("body", "field"), [
    ({"reserve_rate": "1.5"}, "reserve_rate"),
    ({"floor_share": "-0.1"}, "floor_share"),
    ({"floor_share": "0.6", "cap_share": "0.5"}, "floor_share"),
    ({"blend_alpha": "abc"}, "blend_alpha"),
    ({"minimum_payout": "-1"}, "minimum_payout"),
])
def test_a_policy_out_of_range_is_refused_naming_the_term_and_no_version_is_written(consortium, staff, body, field):
    response = staff.client("governance").post(f"/api/v1/consortia/{consortium.slug}/policies/", body, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"], response.json()
    assert AllocationPolicy.objects.filter(version__gt=1).count() == 0


@pytest.mark.parametrize(("fields", "field"), [
    ({"amount": "10.005"}, "amount"),
    ({"amount": "-1.00"}, "amount"),
    ({"amount": "0"}, "amount"),
    ({"amount": "1e400"}, "amount"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "ABC"}, "currency"),
    ({"valuation_runs": []}, "valuation_runs"),
    ({"valuation_runs": ["3fa85f64-5717-4562-b3fc-2c963f66afa6"]}, "valuation_runs"),
    ({"reference": "no spaces allowed"}, "reference"),
    ({"policy_version": 7}, "policy_version"),
])
def test_a_bad_pool_gets_a_400_naming_the_field_and_creates_nothing(consortium, vrun, staff, fields, field):
    response = staff.client("drafter").post(f"/api/v1/consortia/{consortium.slug}/revenue-pools/",
                                            _pool_body(vrun, **fields), format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"], response.json()
    assert not RevenuePool.objects.exists()


def test_the_same_idempotency_key_opens_one_pool(consortium, vrun, staff):
    drafter = staff.client("drafter")
    url = f"/api/v1/consortia/{consortium.slug}/revenue-pools/"
    first = drafter.post(url, _pool_body(vrun), format="json", HTTP_IDEMPOTENCY_KEY="open-q1")
    again = drafter.post(url, _pool_body(vrun), format="json", HTTP_IDEMPOTENCY_KEY="open-q1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json() and RevenuePool.objects.count() == 1


def test_approving_ones_own_draft_twice_or_out_of_turn_gets_a_clear_4xx(consortium, vrun, staff):
    drafter, first = staff.client("drafter"), staff.client("first")
    pool_id = drafter.post(f"/api/v1/consortia/{consortium.slug}/revenue-pools/", _pool_body(vrun),
                           format="json").json()["id"]
    url = f"/api/v1/revenue-pools/{pool_id}/"
    assert first.post(f"{url}approve/").status_code == 409  # nothing drafted yet
    drafter.post(f"{url}draft/")
    own = drafter.post(f"{url}approve/")
    assert own.status_code == 403 and "you drafted" in own.json()["error"]["message"]
    assert first.post(f"{url}approve/").status_code == 200
    assert first.post(f"{url}approve/").status_code == 409
    issue = first.post(f"{url}issue/")
    assert issue.status_code == 409 and "takes 2 approvals" in issue.json()["error"]["message"]
