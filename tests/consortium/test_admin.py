"""The operator admin goes through the services: audited changes, API keys shown once."""

import pytest
from django.contrib.messages import get_messages

from consortium.models import ApiKey, AuditEvent, Membership
from tests.factories import ApiKeyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_an_api_key_added_in_the_admin_is_shown_once_and_stored_hashed(operator, consortium):
    response = operator.post("/admin/consortium/apikey/add/",
                             {"consortium": consortium.pk, "name": "coordinator", "scopes": ["ingest"]}, follow=True)
    key = ApiKey.objects.get(name="coordinator")
    shown = [str(m) for m in get_messages(response.wsgi_request)] + [response.content.decode()]
    raw_key = next(word for text in shown for word in text.split() if word.startswith(key.prefix + "_"))
    assert key.key_hash != raw_key and key.scopes == ["ingest"]
    assert raw_key not in operator.get(f"/admin/consortium/apikey/{key.pk}/change/").content.decode()
    assert AuditEvent.objects.filter(action="api_key.created", object_id=str(key.pk)).exists()


def test_api_keys_are_revoked_not_deleted_in_the_admin(operator, consortium):
    key = ApiKeyFactory(consortium=consortium)
    operator.post("/admin/consortium/apikey/", {"action": "revoke", "_selected_action": [str(key.pk)]})
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert operator.get(f"/admin/consortium/apikey/{key.pk}/delete/").status_code == 403


def test_membership_changes_in_the_admin_are_audited(operator, consortium):
    user = UserFactory()
    operator.post("/admin/consortium/membership/add/",
                  {"user": user.pk, "consortium": consortium.pk, "role": "auditor", "participant": ""})
    assert Membership.objects.get(user=user).role == "auditor"
    event = AuditEvent.objects.get(action="membership.created")
    assert event.actor_label.startswith("user:") and event.data["role"] == "auditor"
