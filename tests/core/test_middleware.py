"""Structured request logging: one record per request with outcome, duration and actor."""

import json
import logging

import pytest
from pythonjsonlogger.json import JsonFormatter

from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def test_each_request_is_logged_with_its_outcome_and_actor(client, consortium, caplog):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    with caplog.at_level(logging.INFO, logger="fairshare.request"):
        response = client.get("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}",
                              HTTP_X_REQUEST_ID="req-42")
    record = next(r for r in caplog.records if r.name == "fairshare.request")
    assert response["X-Request-ID"] == "req-42"
    assert (record.method, record.path, record.status, record.request_id) == ("GET", "/api/v1/consortia/", 200, "req-42")
    assert record.actor == f"api-key:{key.prefix} ({key.name})"
    assert record.duration_ms >= 0
    line = json.loads(JsonFormatter("%(message)s").format(record))
    assert line["status"] == 200 and line["actor"].startswith("api-key:")


def test_anonymous_requests_are_logged_as_anonymous(client, caplog):
    with caplog.at_level(logging.INFO, logger="fairshare.request"):
        client.get("/healthz")
    record = next(r for r in caplog.records if r.name == "fairshare.request")
    assert record.actor == "anonymous" and len(record.request_id) == 32


def test_a_key_refused_before_its_view_ran_is_still_logged_as_the_key(client, consortium, caplog):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    with caplog.at_level(logging.INFO, logger="fairshare.request"):
        response = client.delete("/api/v1/consortia/", HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")
    record = next(r for r in caplog.records if r.name == "fairshare.request")
    assert response.status_code == 405
    assert record.actor == f"api-key:{key.prefix} ({key.name})"


@pytest.mark.parametrize("offered", ["x" * 65, "id with spaces", "line\nbreak", "ünïcode", "<script>", ""])
def test_a_request_id_that_is_not_a_short_plain_token_is_replaced(client, caplog, offered):
    with caplog.at_level(logging.INFO, logger="fairshare.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID=offered)
    record = next(r for r in caplog.records if r.name == "fairshare.request")
    assert response["X-Request-ID"] == record.request_id != offered
    assert len(record.request_id) == 32


def test_a_plain_request_id_of_64_characters_is_kept(client):
    offered = "a1.b2:c3-" + "z" * 55
    assert client.get("/healthz", HTTP_X_REQUEST_ID=offered)["X-Request-ID"] == offered
