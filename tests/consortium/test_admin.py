"""The operator admin goes through the services: audited changes, API keys shown once."""

import pytest
from django.contrib.messages import get_messages

from consortium.models import ApiKey, AuditEvent, Consortium, Membership
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


def _admin_form(**fields):
    # The consortium page carries the participant inline's management form.
    management = {"participants-TOTAL_FORMS": "0", "participants-INITIAL_FORMS": "0",
                  "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000"}
    return {**management, **fields}


def test_a_consortium_added_in_the_admin_is_created_by_the_service_with_its_participants(operator):
    form = _admin_form(slug="north", name="North", transparency="ranks",
                       **{"participants-TOTAL_FORMS": "1", "participants-0-slug": "mill", "participants-0-name": "Mill"})
    response = operator.post("/admin/consortium/consortium/add/", form)
    assert response.status_code == 302, response.content[:500]
    consortium = Consortium.objects.get(slug="north")
    assert consortium.transparency == "ranks"
    assert list(consortium.participants.values_list("slug", flat=True)) == ["mill"]
    actions = sorted(AuditEvent.objects.filter(consortium=consortium).values_list("action", flat=True))
    assert actions == ["consortium.created", "consortium.transparency_changed", "participant.created"]


def test_renaming_in_the_admin_goes_through_the_services(operator, consortium, participants):
    operator.post(f"/admin/consortium/consortium/{consortium.pk}/change/",
                  _admin_form(name="Acme Renamed", transparency=consortium.transparency,
                              **{"participants-TOTAL_FORMS": "3", "participants-INITIAL_FORMS": "3",
                                 **{f"participants-{i}-id": str(p.pk) for i, p in enumerate(participants)},
                                 **{f"participants-{i}-consortium": str(consortium.pk) for i in range(3)}}))
    operator.post(f"/admin/consortium/participant/{participants[1].pk}/change/", {"name": "Beta Works"})
    consortium.refresh_from_db()
    participants[1].refresh_from_db()
    assert (consortium.name, participants[1].name) == ("Acme Renamed", "Beta Works")
    assert AuditEvent.objects.get(action="consortium.renamed").data == {
        "slug": "acme", "from": "Acme Consortium", "to": "Acme Renamed"}
    assert AuditEvent.objects.get(action="participant.renamed").data["to"] == "Beta Works"


def test_consortia_cannot_be_deleted_in_the_admin(operator, consortium):
    assert operator.get(f"/admin/consortium/consortium/{consortium.pk}/delete/").status_code == 403
