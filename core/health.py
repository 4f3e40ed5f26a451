"""``/healthz``: 200 when the database and the broker answer, 503 naming what does not.

The answer names the dependency that is down, never the driver's message (which can carry
host names, user names or versions); the message goes to the log instead.
"""

import logging

from celery import current_app
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("fairshare.health")


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any driver error means "not reachable"
        logger.exception("health check: the database does not answer")
        return False
    return True


def _broker_ok() -> bool:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return True  # tasks run in-process; there is no broker to reach
    try:
        with current_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:
        logger.exception("health check: the broker does not answer")
        return False
    return True


@never_cache
@require_GET
def healthz(request):
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    failing = sorted(name for name, ok in checks.items() if not ok)
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: "ok" if ok else "unavailable" for name, ok in checks.items()},
    }
    if settings.CELERY_TASK_ALWAYS_EAGER:
        body["checks"]["broker"] = "ok (tasks run in-process)"
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
