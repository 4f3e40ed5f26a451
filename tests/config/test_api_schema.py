"""The OpenAPI schema is valid and complete; the interactive docs need no CDN."""

import pytest
import yaml
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_schema_is_valid_openapi_3(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_schema_documents_the_coordinators_contract(schema):
    paths = schema["paths"]
    for path, method in [
        ("/api/v1/training-runs/", "post"),
        ("/api/v1/training-runs/{run_id}/", "get"),
        ("/api/v1/training-runs/{run_id}/rounds/{t}/global-weights", "put"),
        ("/api/v1/training-runs/{run_id}/rounds/{t}/updates/{participant_slug}", "put"),
        ("/api/v1/training-runs/{run_id}/validation-set", "put"),
    ]:
        assert method in paths[path], (path, method)
    update = paths["/api/v1/training-runs/{run_id}/rounds/{t}/updates/{participant_slug}"]["put"]
    form = update["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]
    assert set(schema["components"]["schemas"][form]["required"]) == {"file", "num_examples"}
    assert "ApiKeyAuth" in schema["components"]["securitySchemes"]


def test_interactive_docs_are_served_from_local_static_files(client):
    page = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js").status_code == 200
