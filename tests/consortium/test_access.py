"""Access helpers: what a caller may see of a consortium's participants and their figures."""

import pytest

from consortium.access import Principal, figures_visibility, participant_get, visible_participants
from consortium.services import consortium_transparency_set
from core.errors import NotFound
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("transparency", ["own", "ranks", "all"])
def test_participants_see_other_figures_as_the_transparency_setting_allows(consortium, member, transparency):
    consortium_transparency_set(actor=Principal(user=member("governance")), consortium=consortium,
                                transparency=transparency)
    consortium.refresh_from_db()
    assert figures_visibility(Principal(user=member("participant")), consortium) == transparency
    assert figures_visibility(Principal(user=member("auditor")), consortium) == "all"
    assert figures_visibility(Principal(api_key=ApiKeyFactory(consortium=consortium, scopes=["read"])),
                              consortium) == "all"


def test_a_participant_user_sees_only_its_own_organisation(consortium, participants, member):
    principal = Principal(user=member("participant"))
    assert list(visible_participants(principal, consortium)) == [participants[0]]
    assert participant_get(principal, consortium, "alpha") == participants[0]
    with pytest.raises(NotFound):
        participant_get(principal, consortium, "beta")


def test_staff_see_every_participant(consortium, participants, member):
    principal = Principal(user=member("finance"))
    assert list(visible_participants(principal, consortium)) == participants
