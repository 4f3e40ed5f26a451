"""Model-level rules of the tenancy app."""

import pytest
from django.db import IntegrityError

from consortium.models import ApiKey, Membership, hash_api_key
from tests.factories import ApiKeyFactory, MembershipFactory, ParticipantFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_participant_membership_must_name_its_participant(consortium):
    with pytest.raises(IntegrityError):
        Membership.objects.create(user=UserFactory(), consortium=consortium, role="participant")


def test_staff_membership_cannot_name_a_participant(consortium):
    participant = ParticipantFactory(consortium=consortium)
    with pytest.raises(IntegrityError):
        Membership.objects.create(user=UserFactory(), consortium=consortium, role="finance", participant=participant)


def test_a_user_has_one_role_per_consortium(consortium):
    membership = MembershipFactory(consortium=consortium, role="finance")
    with pytest.raises(IntegrityError):
        MembershipFactory(user=membership.user, consortium=consortium, role="auditor")


def test_api_key_is_stored_only_as_a_hash(consortium):
    api_key = ApiKeyFactory(consortium=consortium)
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert api_key.raw_key.startswith(f"{stored.prefix}_")
    assert stored.key_hash == hash_api_key(api_key.raw_key)
    assert api_key.raw_key not in {str(value) for value in stored.__dict__.values()}
