"""API keys as credentials: prefixed, hashed, revocable, last use recorded."""

import pytest
from django.utils import timezone

from consortium.models import ApiKey
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def _get(api_client, header):
    return api_client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=header)


def test_a_valid_key_authenticates_and_records_its_last_use(api_client, consortium):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    response = _get(api_client, f"Api-Key {key.raw_key}")
    assert response.status_code == 200
    assert [c["slug"] for c in response.json()["results"]] == ["acme"]
    assert ApiKey.objects.get(pk=key.pk).last_used_at is not None


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Api-Key fsk_000000000000_not-a-real-secret", "Invalid API key."),
        ("Api-Key garbage", "Invalid API key."),
        ("Api-Key ", "carries no key"),
    ],
)
def test_bad_keys_are_refused_with_401(api_client, consortium, header, message):
    response = _get(api_client, header)
    assert response.status_code == 401
    assert message in response.json()["error"]["message"]
    assert response["WWW-Authenticate"] == "Api-Key"


def test_a_right_lookup_id_with_a_wrong_secret_is_refused(api_client, consortium):
    key = ApiKeyFactory(consortium=consortium)
    forged = key.raw_key[:-4] + ("AAAA" if not key.raw_key.endswith("AAAA") else "BBBB")
    assert _get(api_client, f"Api-Key {forged}").status_code == 401


def test_a_revoked_key_is_refused(api_client, consortium):
    key = ApiKeyFactory(consortium=consortium, revoked_at=timezone.now())
    response = _get(api_client, f"Api-Key {key.raw_key}")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_no_credentials_is_401_with_a_challenge(api_client, db):
    response = api_client.get("/api/v1/consortia/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"


def test_a_created_key_is_shown_once_and_only_its_prefix_afterwards(api_client, member, consortium):
    api_client.force_authenticate(member("finance"))
    created = api_client.post("/api/v1/consortia/acme/api-keys/", {"name": "coordinator", "scopes": ["ingest"]})
    assert created.status_code == 201
    raw_key = created.json()["key"]
    assert raw_key.startswith(created.json()["prefix"] + "_")
    listed = api_client.get("/api/v1/consortia/acme/api-keys/").json()["results"]
    assert raw_key not in str(listed)
    assert [k["prefix"] for k in listed] == [created.json()["prefix"]]
    api_client.force_authenticate(None)
    assert _get(api_client, f"Api-Key {raw_key}").status_code == 200


def test_revoking_through_the_api_takes_effect_immediately(api_client, member, consortium):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    staff = api_client.__class__()
    staff.force_authenticate(member("finance"))
    response = staff.post(f"/api/v1/consortia/acme/api-keys/{key.pk}/revoke")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert _get(api_client, f"Api-Key {key.raw_key}").status_code == 401


def test_an_unknown_scope_is_a_400_naming_it(api_client, member, consortium):
    api_client.force_authenticate(member("finance"))
    response = api_client.post("/api/v1/consortia/acme/api-keys/", {"name": "k", "scopes": ["admin"]})
    assert response.status_code == 400
    assert "admin" in response.json()["error"]["message"]


def test_a_key_of_another_consortium_cannot_be_revoked_by_id(api_client, member, consortium):
    from tests.factories import ConsortiumFactory

    foreign = ApiKeyFactory(consortium=ConsortiumFactory(slug="other"))
    api_client.force_authenticate(member("finance"))
    response = api_client.post(f"/api/v1/consortia/acme/api-keys/{foreign.pk}/revoke")
    assert response.status_code == 404
    assert ApiKey.objects.get(pk=foreign.pk).revoked_at is None


@pytest.mark.parametrize(("query", "status", "count"), [
    ("limit=119912984591643645647197285908480", 200, 1),  # served as the maximum page
    ("offset=119912984591643645647197285908480", 400, None),
    ("limit=abc", 200, 1),  # ignored, as DRF does
])
def test_pagination_parameters_are_bounded(api_client, consortium, query, status, count):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    response = api_client.get(f"/api/v1/consortia/?{query}", HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")
    assert response.status_code == status
    if count is not None:
        assert len(response.json()["results"]) == count
