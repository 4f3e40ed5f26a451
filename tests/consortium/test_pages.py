"""Pages: sign-in with throttling, dashboard, API keys shown once, audit log."""

import pytest
from django.test import Client

from consortium.models import ApiKey
from tests.factories import ApiKeyFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_login_page_signs_a_member_in_to_the_dashboard(member, consortium):
    user = member("finance")
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": user.username, "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert consortium.name in response.content.decode()


def test_repeated_wrong_passwords_lock_the_account_out(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory()
    client = Client()
    for _ in range(3):
        client.post("/login/", {"username": user.username, "password": "wrong"})
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.content.decode()


def test_finance_creates_a_key_on_the_page_and_sees_it_once(client, member, consortium):
    client.force_login(member("finance"))
    response = client.post("/c/acme/api-keys/", {"name": "coordinator", "scopes": ["ingest"]})
    page = response.content.decode()
    key = ApiKey.objects.get(name="coordinator")
    assert response.status_code == 200
    secret_start = page.index(key.prefix + "_")
    raw_key = page[secret_start:page.index("<", secret_start)].strip()
    assert len(raw_key) > len(key.prefix) + 20
    assert raw_key not in client.get("/c/acme/api-keys/").content.decode()


def test_finance_revokes_a_key_on_the_page(client, member, consortium):
    key = ApiKeyFactory(consortium=consortium)
    client.force_login(member("finance"))
    response = client.post(f"/c/acme/api-keys/{key.pk}/revoke", follow=True)
    assert "revoked" in response.content.decode()
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_key_form_errors_are_shown_and_nothing_is_created(client, member, consortium):
    client.force_login(member("finance"))
    response = client.post("/c/acme/api-keys/", {"name": "", "scopes": []})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_audit_page_lists_recent_changes(client, member, consortium):
    client.force_login(member("finance"))
    client.post("/c/acme/api-keys/", {"name": "coordinator", "scopes": ["read"]})
    client.force_login(member("auditor"))
    page = client.get("/c/acme/audit/").content.decode()
    assert "api_key.created" in page


@pytest.mark.parametrize("length", [151, 256, 100_000])
def test_an_over_long_username_is_refused_by_the_form_not_by_the_database(client, length):
    for _ in range(3):
        response = client.post("/login/", {"username": "x" * length, "password": "secret"})
        assert response.status_code == 200
        assert "at most 150 characters" in response.content.decode()
