"""Every response under /api/ is the documented JSON error body, also where no DRF view runs;
JSON bodies are refused, not crashed on, when nested too deeply."""

import json

import pytest

from consortium.audit import system_principal
from core.parsers import MAX_JSON_DEPTH, json_depth_exceeds
from tests.factories import ApiKeyFactory
from tests.valuation.conftest import LOGISTIC_SPEC
from valuation.services import training_run_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def coordinator(client, consortium):
    key = ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation", "valuation", "read"])
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {key.raw_key}"
    return client


@pytest.mark.parametrize("path", [
    "/api/v1/training-runs/not-a-uuid/",
    "/api/v1/training-runs/00000000-0000-0000-0000-000000000000/rounds/-1/global-weights",
    "/api/v1/no-such-thing/",
    "/api/v2/consortia/",
    "/api/v1/consortia/Not%20A%20Slug/",
])
def test_an_unmatched_api_route_is_a_json_404(coordinator, path):
    response = coordinator.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_an_unmatched_page_is_still_an_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "application/json" not in response["Content-Type"]


def test_an_over_large_json_body_is_a_json_413(coordinator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"name": "x" * 4096})
    response = coordinator.generic("POST", "/api/v1/training-runs/", body, content_type="application/json")
    assert response.status_code == 413, response.content[:200]
    assert response.json()["error"]["code"] == "payload_too_large"


# Every endpoint that takes a JSON body, with a caller allowed to send it.
JSON_WRITES = [("POST", "/api/v1/training-runs/", "key"), ("POST", "/api/v1/consortia/acme/api-keys/", "finance"),
               ("PATCH", "/api/v1/consortia/acme/", "governance")]


@pytest.mark.parametrize(("method", "path", "caller"), JSON_WRITES)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 2000, 100_000])
def test_deeply_nested_json_is_a_400_on_every_json_write(coordinator, member, method, path, caller, depth):
    if caller != "key":
        coordinator.defaults.pop("HTTP_AUTHORIZATION")
        coordinator.force_login(member(caller))
    body = "[" * depth + "]" * depth
    response = coordinator.generic(method, path, body, content_type="application/json")
    assert response.status_code == 400, response.content[:200]
    assert response.json()["error"]["code"] == "parse_error"
    assert "nested" in response.json()["error"]["message"]


def test_json_nested_as_deep_as_allowed_is_parsed(coordinator):
    spec = [{"name": "coef", "shape": [4], "dtype": "float64"}, {"name": "intercept", "shape": [], "dtype": "float64"}]
    body = {"name": "r", "model_family": "logistic", "task": "binary", "metric": "auc", "parameter_spec": spec}
    response = coordinator.post("/api/v1/training-runs/", body, content_type="application/json")
    assert response.status_code == 201, response.content[:200]


def test_the_depth_check_counts_levels_without_recursion():
    deep = current = []
    for _ in range(50_000):
        current.append([])
        current = current[0]
    assert json_depth_exceeds(deep, 10)
    assert not json_depth_exceeds({"a": [{"b": 1}]}, 3)
    assert json_depth_exceeds({"a": [{"b": []}]}, 3)


@pytest.mark.parametrize("length", ["abc", "-5", "1e9", "١٠"])
def test_a_non_numeric_content_length_is_a_400(coordinator, consortium, length):
    run = training_run_create(actor=system_principal(), consortium=consortium, name="r", model_family="logistic",
                              task="binary", metric="auc", parameter_spec=LOGISTIC_SPEC)
    response = coordinator.generic("PUT", f"/api/v1/training-runs/{run.pk}/rounds/0/global-weights",
                                   b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH=length)
    assert response.status_code == 400, response.content[:200]
    assert "Content-Length" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["/api/v1/schema/?format=bogus", "/api/v1/docs/?format=json",
                                 "/api/v1/ledger/public-key/?format=xml", "/api/v1/consortia/?format=api"])
def test_an_unknown_format_is_a_json_404_even_from_the_schema_and_docs_views(coordinator, url):
    response = coordinator.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_the_schema_and_docs_views_still_answer_in_their_own_formats(client):
    assert client.get("/api/v1/schema/")["Content-Type"].startswith("application/vnd.oai.openapi")
    assert client.get("/api/v1/schema/?format=json").json()["info"]["title"] == "Fairshare API"
    assert client.get("/api/v1/docs/")["Content-Type"].startswith("text/html")
    assert client.get("/api/v1/docs/?script")["Content-Type"].startswith("application/javascript")
