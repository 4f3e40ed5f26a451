"""/healthz answers 200 when the database and broker answer, 503 naming what does not."""

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


def test_healthy_service_answers_200(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["database"] == "ok"


def test_unreachable_database_is_named_in_a_503_without_the_driver_message(client, caplog):
    def refuse(execute, sql, params, many, context):
        raise OperationalError('could not connect to server "db.internal" as user "fairshare": Connection refused')

    with connection.execute_wrapper(refuse):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert response.json()["checks"]["database"] == "unavailable"
    assert "db.internal" not in response.content.decode()
    assert "Connection refused" in caplog.text  # operators find the cause in the log


def test_unreachable_broker_is_named_in_a_503(client, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    # Port 9 (discard) is closed on test machines: a real connection attempt that fails.
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
    assert response.json()["checks"]["broker"] == "unavailable"
    assert "127.0.0.1" not in response.content.decode()
