"""Operator commands: consortium_create, api_key_create."""

import io

import pytest
from django.core.management import CommandError, call_command

from consortium.models import ApiKey, AuditEvent, Consortium

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_consortium_create_makes_the_consortium_and_its_participants():
    output = run("consortium_create", "--slug", "north", "--name", "North Sea", "--participants", "a,b, c")
    consortium = Consortium.objects.get(slug="north")
    assert list(consortium.participants.values_list("slug", flat=True)) == ["a", "b", "c"]
    assert "3 participant(s)" in output
    assert AuditEvent.objects.filter(actor_label="system:operator-command", action="consortium.created").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slug", "Bad Slug", "--name", "x"], "slug"),
        (["--slug", "dup", "--name", "x", "--participants", "a,a"], "twice"),
    ],
)
def test_consortium_create_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        run("consortium_create", *args)
    assert not Consortium.objects.exists()


def test_api_key_create_prints_a_working_key_once(api_client):
    run("consortium_create", "--slug", "north", "--name", "North")
    raw_key = run("api_key_create", "--consortium", "north", "--scopes", "ingest,validation").strip()
    key = ApiKey.objects.get()
    assert raw_key.startswith(key.prefix) and key.scopes == ["ingest", "validation"]
    response = api_client.get("/api/v1/consortia/north/", HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--consortium", "nowhere", "--scopes", "ingest"], "No consortium"),
     (["--consortium", "north", "--scopes", "ingest,root"], "Unknown scope")],
)
def test_api_key_create_refuses_bad_input(args, message):
    run("consortium_create", "--slug", "north", "--name", "North")
    with pytest.raises(CommandError, match=message):
        run("api_key_create", *args)
    assert not ApiKey.objects.exists()
