"""API rate limits: per key whatever address it calls from, per user, per anonymous address."""

import pytest
from django.core.cache import cache

from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    cache.clear()
    settings.API_THROTTLE_RATES = {"api_key": "3/minute", "user": "2/minute", "anonymous": "1/minute"}
    yield settings.API_THROTTLE_RATES
    cache.clear()


def test_a_key_over_its_rate_gets_429_with_retry_after(client, consortium, limits):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    statuses = [client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}",
                           REMOTE_ADDR=f"10.0.0.{i}").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")
    assert refused.json()["error"]["code"] == "throttled" and int(refused["Retry-After"]) > 0


def test_each_key_has_its_own_bucket(client, consortium, limits):
    first, second = (ApiKeyFactory(consortium=consortium, scopes=["read"]) for _ in range(2))
    for _ in range(3):
        client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {first.raw_key}")
    assert client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {first.raw_key}").status_code == 429
    assert client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {second.raw_key}").status_code == 200


def test_signed_in_users_and_anonymous_callers_are_limited_too(client, member, limits):
    # Anonymous callers reach only the public endpoints; elsewhere they are refused (401) first.
    assert [client.get("/api/v1/ledger/public-key/").status_code for _ in range(2)] == [200, 429]
    client.force_login(member("finance"))
    assert [client.get("/api/v1/consortia/").status_code for _ in range(3)] == [200, 200, 429]


def test_a_rate_of_none_turns_a_limit_off(client, consortium, limits):
    limits["api_key"] = None
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    assert {client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}").status_code
            for _ in range(10)} == {200}
