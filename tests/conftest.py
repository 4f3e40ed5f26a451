"""Shared fixtures and the service markers.

Tests marked ``postgres`` or ``redis`` need the real service. Without it they are skipped,
unless ``REQUIRE_SERVICES=1`` (as in CI), where a missing service fails the run instead.
"""

import base64
import os

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from ledger.testing import permit_ledger_flush
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory

# Transactional tests end with a flush, which the ledger's append-only triggers refuse
# unless it runs under the ledger's truncate permit (only the flush gets it).
permit_ledger_flush()


def _services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def _missing_service(marker_name: str) -> str | None:
    if marker_name == "browser" and not os.path.exists("/usr/bin/chromium"):
        return "Debian's chromium is not installed (apt-get install chromium)"
    if marker_name == "postgres":
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            return "PostgreSQL is not configured (set DATABASE_URL=postgres://...)"
    if marker_name == "redis":
        url = os.environ.get("CELERY_BROKER_URL", "")
        if not url.startswith("redis://"):
            return "Redis is not configured (set CELERY_BROKER_URL=redis://...)"
        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except Exception as exc:
            return f"Redis at {url} does not answer: {exc}"
    return None


def pytest_runtest_setup(item):
    for marker_name in ("postgres", "redis", "browser"):
        if item.get_closest_marker(marker_name) is None:
            continue
        reason = _missing_service(marker_name)
        if reason is None:
            continue
        if _services_required():
            pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _celery_mode(request):
    """Tasks run in-process, except in tests marked ``redis``, which start a real worker."""
    from config.celery import app

    eager = request.node.get_closest_marker("redis") is None
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = eager, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


TEST_LEDGER_SIGNING_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(autouse=True)
def _ledger_signing_key(settings):
    # Tests run with DEBUG off, where the ledger refuses to invent a signing key.
    settings.LEDGER_SIGNING_KEY = TEST_LEDGER_SIGNING_KEY


@pytest.fixture(autouse=True)
def _no_rate_limits(settings):
    # Tests call the API far faster than any client may; tests/core/test_throttling.py turns
    # the limits back on where they are the subject.
    settings.API_THROTTLE_RATES = {"api_key": None, "user": None, "anonymous": None}


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    # Uploads from one test must never be seen by another, nor land in the project folder.
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def consortium(db):
    return ConsortiumFactory(slug="acme", name="Acme Consortium")


@pytest.fixture
def participants(consortium):
    return [ParticipantFactory(consortium=consortium, slug=slug) for slug in ("alpha", "beta", "gamma")]


@pytest.fixture
def member(consortium, participants):
    """``member(role)`` → a user with that role in ``consortium`` (participant users speak for alpha)."""

    def make(role: str):
        participant = participants[0] if role == "participant" else None
        return MembershipFactory(consortium=consortium, role=role, participant=participant).user

    return make
