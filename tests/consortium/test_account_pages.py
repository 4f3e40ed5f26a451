"""Signing out, changing one's password, and the menu each role gets."""

import pytest
from django.test import Client

from consortium.access import Principal
from consortium.navigation import consortium_nav
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a completely different passphrase 7"


def test_sign_out_ends_the_session(member):
    client = Client()
    client.force_login(member("auditor"))
    assert client.get("/").status_code == 200
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the sign-in page
    assert client.get("/logout/").status_code == 405  # signing out is a POST (no CSRF-able GET)


def test_a_member_changes_the_password_and_signs_in_with_the_new_one(member):
    user = member("participant")
    client = Client()
    client.force_login(user)
    assert "Change password" in client.get("/password/").content.decode()
    response = client.post("/password/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                          "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/password/done/"
    assert client.get("/").status_code == 200  # this session stays signed in
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)


def test_a_wrong_old_password_is_shown_next_to_its_field_and_changes_nothing(member):
    user = member("finance")
    client = Client()
    client.force_login(user)
    response = client.post("/password/", {"old_password": "not it", "new_password1": NEW_PASSWORD,
                                          "new_password2": NEW_PASSWORD})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in page
    assert 'class="errorlist"' in page
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_mismatched_new_passwords_are_refused(member):
    user = member("governance")
    client = Client()
    client.force_login(user)
    response = client.post("/password/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD,
                                          "new_password2": NEW_PASSWORD + "x"})
    assert "The two password fields" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_the_password_page_needs_a_signed_in_user():
    response = Client().get("/password/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def _labels(role: str) -> list[str]:
    consortium = ConsortiumFactory()
    participant = ParticipantFactory(consortium=consortium) if role == "participant" else None
    user = MembershipFactory(consortium=consortium, role=role, participant=participant).user
    return [item["label"] for item in consortium_nav(principal=Principal(user=user), consortium=consortium,
                                                     path=f"/c/{consortium.slug}/")]


def test_each_role_gets_its_own_menu():
    assert _labels("participant") == ["Overview", "My contribution", "Statements", "Disputes", "Ledger", "Checkpoints"]
    assert _labels("finance") == ["Overview", "Training runs", "Valuations", "Revenue pools", "Statements", "Disputes",
                                  "Ledger", "Checkpoints", "Audit log", "API keys"]
    assert _labels("governance") == _labels("auditor") == _labels("finance")


def test_the_current_page_is_marked_in_the_menu(member, consortium):
    client = Client()
    client.force_login(member("finance"))
    page = client.get(f"/c/{consortium.slug}/audit/").content.decode()
    assert f'<a href="/c/{consortium.slug}/audit/" aria-current="page">Audit log</a>' in page
    assert f'<a href="/c/{consortium.slug}/" aria-current="page">' not in page


def test_a_refusal_page_says_why_and_a_missing_page_reveals_nothing(member, consortium):
    client = Client()
    client.force_login(member("participant"))
    refused = client.get(f"/c/{consortium.slug}/audit/")
    assert refused.status_code == 403 and "Not allowed" in refused.content.decode()
    missing = client.get("/c/no-such-consortium/")
    page = missing.content.decode()
    assert missing.status_code == 404 and "Not found" in page and "no-such-consortium" not in page
