"""Who may call which ledger endpoint: the exact status code for every role.

A participant user speaks for alpha; ``entry-alpha`` concerns alpha, ``entry-beta`` only
beta. ``outsider`` is finance staff of another consortium.
"""

from decimal import Decimal

import pytest
from django.utils import timezone

from ledger.services import checkpoint_create, entry_append
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory

pytestmark = pytest.mark.django_db

ROLES = ["finance", "governance", "auditor", "participant", "anonymous", "outsider", "revoked_key", "read_key", "ingest_key"]

ENDPOINTS = {
    #                  finance governance auditor participant anonymous outsider revoked read  ingest
    "entries":         (200, 200, 200, 200, 401, 404, 401, 200, 403),
    "entry-alpha":     (200, 200, 200, 200, 401, 404, 401, 200, 403),
    "entry-beta":      (200, 200, 200, 404, 401, 404, 401, 200, 403),
    "entry-missing":   (404, 404, 404, 404, 401, 404, 401, 404, 403),
    "balances":        (200, 200, 200, 200, 401, 404, 401, 200, 403),
    "checkpoints":     (200, 200, 200, 200, 401, 200, 401, 200, 403),
    "checkpoint-last": (200, 200, 200, 200, 401, 200, 401, 200, 403),
    "checkpoint-size": (200, 200, 200, 200, 401, 200, 401, 200, 403),
    "consistency":     (200, 200, 200, 200, 401, 200, 401, 200, 403),
    "public-key":      (200, 200, 200, 200, 200, 200, 401, 200, 200),
}

URLS = {
    "entries": "/api/v1/consortia/acme/ledger/entries/",
    "entry-alpha": "/api/v1/consortia/acme/ledger/entries/1/",
    "entry-beta": "/api/v1/consortia/acme/ledger/entries/2/",
    "entry-missing": "/api/v1/consortia/acme/ledger/entries/99/",
    "balances": "/api/v1/consortia/acme/ledger/balances/",
    "checkpoints": "/api/v1/ledger/checkpoints/",
    "checkpoint-last": "/api/v1/ledger/checkpoints/latest/",
    "checkpoint-size": "/api/v1/ledger/checkpoints/3/",
    "consistency": "/api/v1/ledger/consistency/?old=1&new=3",
    "public-key": "/api/v1/ledger/public-key/",
}


@pytest.fixture
def ledger(consortium, participants, receipt):
    receipt(consortium)
    for slug in ("alpha", "beta"):
        entry_append(consortium=consortium, kind="transaction", body={}, actor="system:test", reference_type="statement",
                     reference_id=f"s-{slug}", postings=[("revenue_pool", Decimal("-1"), "EUR"),
                                                         (f"participant_payable:{slug}", Decimal("1"), "EUR")])
    checkpoint_create()


def _authenticate(client, role, consortium, member):
    if role in ("finance", "governance", "auditor", "participant"):
        client.force_login(member(role))
    elif role == "outsider":
        client.force_login(MembershipFactory(consortium=ConsortiumFactory(slug="elsewhere"), role="finance").user)
    elif role.endswith("_key"):
        scope = {"revoked_key": "read", "read_key": "read", "ingest_key": "ingest"}[role]
        key = ApiKeyFactory(consortium=consortium, scopes=[scope])
        if role == "revoked_key":
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(api_client, ledger, consortium, member, endpoint, role):
    _authenticate(api_client, role, consortium, member)
    response = api_client.get(URLS[endpoint])
    expected = ENDPOINTS[endpoint][ROLES.index(role)]
    assert response.status_code == expected, (endpoint, role, response.content[:300])
    if expected >= 400:
        assert set(response.json()) == {"error"}
