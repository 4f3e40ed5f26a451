"""Tenancy services: each change is written with its audit event."""

import pytest

from consortium.access import Principal
from consortium.models import AuditEvent, Membership
from consortium.services import (
    api_key_create,
    api_key_revoke,
    consortium_create,
    consortium_rename,
    consortium_transparency_set,
    membership_set,
    participant_delete,
    participant_rename,
)
from core.errors import Conflict, InvalidInput
from tests.factories import ConsortiumFactory, ParticipantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def actor(member):
    return Principal(user=member("finance"))


def test_consortium_create_writes_participants_and_audit_events(actor):
    consortium = consortium_create(actor=actor, slug="north", name="North", participants=[("a", "A"), ("b", "B")])
    assert list(consortium.participants.values_list("slug", flat=True)) == ["a", "b"]
    actions = list(AuditEvent.objects.filter(consortium=consortium).values_list("action", flat=True))
    assert sorted(actions) == ["consortium.created", "participant.created", "participant.created"]


def test_consortium_create_refuses_a_taken_slug_and_writes_nothing(actor, consortium):
    before = AuditEvent.objects.count()
    with pytest.raises(Conflict, match="already exists") as refused:
        consortium_create(actor=actor, slug="acme", name="Again", participants=[("x", "X")])
    assert refused.value.field == "slug"
    assert AuditEvent.objects.count() == before


def test_consortium_create_refuses_a_bad_participant_slug_atomically(actor):
    with pytest.raises(InvalidInput, match="A slug is 1-64 lowercase letters") as refused:
        consortium_create(actor=actor, slug="south", name="South", participants=[("ok", "Ok"), ("Bad Slug", "B")])
    assert refused.value.field == "slug"
    assert not AuditEvent.objects.filter(data__slug="south").exists()


def test_membership_changes_are_audited_with_who_and_what(actor, consortium):
    user = UserFactory()
    membership_set(actor=actor, user=user, consortium=consortium, role="auditor")
    membership_set(actor=actor, user=user, consortium=consortium, role="governance")
    assert Membership.objects.get(user=user).role == "governance"
    events = AuditEvent.objects.filter(action__startswith="membership.").order_by("id")
    assert [e.action for e in events] == ["membership.created", "membership.changed"]
    assert events.last().actor_user == actor.user
    assert events.last().data["role"] == "governance"


def test_a_participant_membership_must_name_a_participant_of_the_same_consortium(actor, consortium):
    foreign = ParticipantFactory(consortium=ConsortiumFactory())
    with pytest.raises(InvalidInput, match="another consortium"):
        membership_set(actor=actor, user=UserFactory(), consortium=consortium, role="participant", participant=foreign)
    with pytest.raises(InvalidInput, match="names its participant"):
        membership_set(actor=actor, user=UserFactory(), consortium=consortium, role="participant")


def test_revoking_twice_logs_once(actor, consortium):
    api_key, _raw = api_key_create(actor=actor, consortium=consortium, name="k", scopes=["read"])
    api_key_revoke(actor=actor, api_key=api_key)
    first_revoked_at = api_key.__class__.objects.get(pk=api_key.pk).revoked_at
    api_key_revoke(actor=actor, api_key=api_key)
    assert api_key.__class__.objects.get(pk=api_key.pk).revoked_at == first_revoked_at
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_api_key_audit_event_never_holds_the_secret(actor, consortium):
    api_key, raw_key = api_key_create(actor=actor, consortium=consortium, name="k", scopes=["ingest", "read"])
    event = AuditEvent.objects.get(action="api_key.created")
    assert raw_key not in str(event.data)
    assert event.data["scopes"] == ["ingest", "read"]


def test_transparency_change_is_audited_with_old_and_new(consortium):
    governance = Principal(user=UserFactory())
    consortium_transparency_set(actor=governance, consortium=consortium, transparency="all")
    event = AuditEvent.objects.get(action="consortium.transparency_changed")
    assert event.data == {"from": "own", "to": "all"}


def test_auditor_reads_the_audit_log_through_the_api(api_client, member, actor, consortium):
    api_key_create(actor=actor, consortium=consortium, name="k", scopes=["read"])
    api_client.force_authenticate(member("auditor"))
    events = api_client.get("/api/v1/consortia/acme/audit-events/").json()["results"]
    assert events[0]["action"] == "api_key.created"
    assert events[0]["actor"] == f"user:{actor.user.get_username()}"


def test_renaming_keeps_the_slug_and_audits_old_and_new_names(actor, consortium, participants):
    consortium_rename(actor=actor, consortium=consortium, name="Acme Industrial Consortium")
    participant_rename(actor=actor, participant=participants[0], name="Alpha Forge")
    consortium.refresh_from_db()
    participants[0].refresh_from_db()
    assert (consortium.slug, consortium.name) == ("acme", "Acme Industrial Consortium")
    assert (participants[0].slug, participants[0].name) == ("alpha", "Alpha Forge")
    renamed = AuditEvent.objects.get(action="participant.renamed")
    assert renamed.data == {"slug": "alpha", "from": participants[0].slug.title(), "to": "Alpha Forge"}


def test_renaming_to_the_same_name_logs_nothing(actor, consortium):
    consortium_rename(actor=actor, consortium=consortium, name=consortium.name)
    assert not AuditEvent.objects.filter(action="consortium.renamed").exists()


def test_a_rename_that_breaks_a_field_rule_changes_nothing(actor, consortium):
    with pytest.raises(InvalidInput) as refused:
        consortium_rename(actor=actor, consortium=consortium, name="x" * 201)
    assert refused.value.field == "name"
    consortium.refresh_from_db()
    assert consortium.name == "Acme Consortium"


def test_deleting_a_participant_is_audited(actor, consortium):
    unused = ParticipantFactory(consortium=consortium, slug="unused")
    participant_delete(actor=actor, participant=unused)
    assert not consortium.participants.filter(slug="unused").exists()
    assert AuditEvent.objects.get(action="participant.deleted").data["slug"] == "unused"
