"""The ledger pages: the list with filters and key pagination, an entry with its proof, the
export an auditor verifies offline, the checkpoints; who may see what; queries per page."""

import base64
import csv
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger import signing, verify_export
from ledger.models import Checkpoint
from ledger.services import checkpoint_create, entry_append, inclusion_proof_get
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

STAFF = ("finance", "governance", "auditor")


def receipt(consortium, amount="100.00", memo="receipt", pool="2026-q1"):
    value = Decimal(amount)
    return entry_append(consortium=consortium, kind="transaction", body={"memo": memo}, actor="system:test",
                        postings=[("consortium_income", -value, "EUR"), (f"revenue_pool:{pool}", value, "EUR")],
                        reference_type="revenue_pool", reference_id=pool)


def payable(consortium, slug, amount="40.00", statement="s-1"):
    value = Decimal(amount)
    return entry_append(consortium=consortium, kind="transaction", actor="system:test",
                        body={"type": "statement", "participant": slug}, reference_type="statement",
                        reference_id=statement, postings=[("revenue_pool:2026-q1", -value, "EUR"),
                                                          (f"participant_payable:{slug}", value, "EUR")])


def decision(consortium, slug, dispute="d-1"):
    return entry_append(consortium=consortium, kind="record", body={"type": "dispute_decision"}, actor="user:gov@x.test",
                        reference_type="dispute", reference_id=dispute, participants=[slug])


@pytest.fixture
def world(consortium, participants):
    """seq 0 receipt, 1 alpha's payable, 2 beta's payable, 3 a record for alpha; checkpoint at 4."""
    entries = [receipt(consortium, "250000.00", memo="Q1 licence income"), payable(consortium, "alpha", "600.00"),
               payable(consortium, "beta", "400.00", statement="s-2"), decision(consortium, "alpha")]
    checkpoint_create()
    return entries


def page(client, user, url, status=200):
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == status, response.content[:300]
    return response.content.decode() if status == 200 else response


def rows(html: str) -> list[int]:
    """The entry numbers listed, in order."""
    return [int(part.split('"', 1)[0]) for part in html.split('aria-label="Entry ')[1:]]


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


# --- the list -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", STAFF)
def test_staff_see_every_entry_newest_first_with_totals_memos_and_actors(client, member, world, role):
    html = page(client, member(role), "/c/acme/ledger/")
    assert rows(html) == [3, 2, 1, 0]
    assert ">250000.00 EUR<" in html and ">600.00 EUR<" in html
    assert "Q1 licence income" in html and "dispute decision" in html and "user:gov@x.test" in html
    assert 'href="/c/acme/ledger/export"' in html


def test_a_participant_sees_only_the_entries_that_concern_it(client, member, world):
    html = page(client, member("participant"), "/c/acme/ledger/")
    assert rows(html) == [3, 1]
    assert 'name="participant"' not in html and 'href="/c/acme/ledger/export"' in html
    assert rows(page(client, member("participant"), "/c/acme/ledger/?participant=beta")) == [3, 1]


@pytest.mark.parametrize(("query", "expected"), [
    ("kind=record", [3]),
    ("kind=transaction", [2, 1, 0]),
    ("reference_type=statement", [2, 1]),
    ("reference_type=statement&reference_id=s-2", [2]),
    ("account=participant_payable", [2, 1]),
    ("account=participant_payable:al", [1]),
    ("account=consortium_income", [0]),
    ("participant=alpha", [3, 1]),
    ("seq_from=1&seq_to=2", [2, 1]),
    ("date_from=2000-01-01&date_to=9999-12-31", [3, 2, 1, 0]),
    ("date_to=2000-01-01", []),
])
def test_filters_in_the_url_narrow_the_list_and_stay_in_the_form(client, member, world, query, expected):
    html = page(client, member("auditor"), f"/c/acme/ledger/?{query}")
    assert rows(html) == expected
    name, value = query.split("&")[-1].split("=")
    assert f'name="{name}" value="{value}"' in html or f'value="{value}" selected' in html


@pytest.mark.parametrize(("query", "field", "message"), [
    ("seq_from=3&seq_to=1", "seq_to", "below the first"),
    ("date_from=2026-02-01&date_to=2026-01-01", "date_to", "before the start date"),
    ("account=revenue%20pool", "account", "only letters"),
    ("participant=nobody", "participant", "No participant &#x27;nobody&#x27;"),
    ("reference_id=s-2", "reference_type", "Choose the reference type"),
    ("kind=invoice", "kind", "Select a valid choice"),
    ("seq_from=-1", "seq_from", "greater than or equal to 0"),
])
def test_a_bad_filter_is_shown_next_to_its_field_and_left_out(client, member, world, query, field, message):
    html = page(client, member("auditor"), f"/c/acme/ledger/?{query}")
    assert f'id="id_{field}-errors"' in html and message in html
    assert rows(html)  # the other filters still apply; the bad one is ignored


def test_pages_go_by_key_newest_first(client, member, consortium, participants):
    for n in range(120):
        receipt(consortium, f"{n + 1}.00")
    user = member("auditor")
    first = page(client, user, "/c/acme/ledger/")
    assert rows(first) == list(range(119, 69, -1)) and "?before=70" in first and "Newer" not in first
    older = page(client, user, "/c/acme/ledger/?before=70")
    assert rows(older) == list(range(69, 19, -1)) and "?after=69" in older
    assert rows(page(client, user, "/c/acme/ledger/?page=last")) == list(range(49, -1, -1))
    assert rows(page(client, user, "/c/acme/ledger/?after=69")) == list(range(119, 69, -1))
    for junk in ("before=%C2%B2", "after=-5", f"before={2**64}", "page=9"):  # the newest page, never an error
        assert rows(page(client, user, f"/c/acme/ledger/?{junk}")) == list(range(119, 69, -1))
    last = page(client, user, "/c/acme/ledger/?before=20&kind=transaction")
    assert rows(last) == list(range(19, -1, -1)) and "Older" not in last
    assert "kind=transaction" in last.split("Newer")[0].rsplit("href=", 1)[1]  # the pager keeps the filters


def test_the_csv_holds_every_filtered_entry_and_is_formula_safe(client, member, consortium, participants):
    for n in range(60):
        receipt(consortium, "1.00", memo="=HYPERLINK(\"http://evil\")" if n == 0 else f"receipt {n}")
    decision(consortium, "alpha")
    client.force_login(member("auditor"))
    response = client.get("/c/acme/ledger/?format=csv&kind=transaction&page=last")
    assert response.streaming and response["Content-Disposition"] == 'attachment; filename="ledger-acme.csv"'
    table = csv_rows(response)
    assert table[0][:3] == ["seq", "time (UTC)", "kind"] and len(table) == 61
    assert [int(row[0]) for row in table[1:]] == list(range(59, -1, -1))
    assert table[-1][5] == "'=HYPERLINK(\"http://evil\")" and table[-1][6:8] == ["1.00", "EUR"]


def test_a_participants_csv_holds_only_its_own_entries(client, member, world):
    client.force_login(member("participant"))
    table = csv_rows(client.get("/c/acme/ledger/?format=csv"))
    assert [row[0] for row in table[1:]] == ["3", "1"]


# --- an entry ---------------------------------------------------------------------------------


def test_an_entry_shows_its_postings_balance_hashes_and_inclusion_proof(client, member, world):
    html = page(client, member("auditor"), "/c/acme/ledger/1/")
    entry = world[1]
    assert "participant_payable:alpha" in html and "600.00" in html and "-600.00" in html
    assert 'data-testid="balance-state">balanced<' in html
    assert bytes(entry.leaf_hash).hex() in html and bytes(entry.prev_hash).hex() in html
    for value in inclusion_proof_get(seq=1, tree_size=4):
        assert value.hex() in html
    assert Checkpoint.objects.get(tree_size=4).note in html.replace("&#x2014;", "\u2014")
    assert "--entry ledger-entry-1.json --public-key " + signing.public_key_info()["public_key"] in html


def test_an_entry_newer_than_every_checkpoint_says_its_proof_is_to_come(client, member, world, consortium):
    receipt(consortium)
    html = page(client, member("finance"), "/c/acme/ledger/4/")
    assert 'data-testid="no-proof"' in html and 'data-testid="inclusion-proof"' not in html


def test_the_entry_download_is_the_api_answer_and_verifies_offline(client, member, world, tmp_path):
    client.force_login(member("participant"))
    response = client.get("/c/acme/ledger/1/?format=json")
    assert response["Content-Disposition"] == 'attachment; filename="ledger-entry-1.json"'
    assert json.loads(response.content) == client.get("/api/v1/consortia/acme/ledger/entries/1/").json()
    path = tmp_path / "entry.json"
    path.write_bytes(response.content)
    assert verify_export.check_entry(str(path), signing.public_key_bytes()).startswith("OK: entry 1 ")


def test_an_entry_outside_the_callers_scope_is_404(client, member, world, consortium):
    other = ConsortiumFactory(slug="other")
    foreign = receipt(other)
    page(client, member("auditor"), f"/c/acme/ledger/{foreign.seq}/", status=404)
    page(client, member("participant"), "/c/acme/ledger/2/", status=404)  # beta's payable
    page(client, member("participant"), "/c/acme/ledger/1/")
    page(client, member("auditor"), f"/c/acme/ledger/{2**63}/", status=404)


# --- the export -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", STAFF)
def test_staff_download_the_export_and_it_verifies_offline(client, member, world, tmp_path, role):
    client.force_login(member(role))
    response = client.get("/c/acme/ledger/export")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="fairshare-ledger-acme-4.jsonl"'
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    summary = verify_export.check_export(str(path), signing.public_key_bytes())
    assert summary.startswith("OK: 4 entries") and "checkpoint at size 4" in summary
    call_command("export_ledger", "--out", str(tmp_path / "command.jsonl"), "--consortium", "acme")
    same = [json.loads(line) for line in (tmp_path / "command.jsonl").read_bytes().splitlines()]
    got = [json.loads(line) for line in path.read_bytes().splitlines()]
    same[0].pop("exported_at"), got[0].pop("exported_at")
    assert got == same  # what `manage.py export_ledger` writes


def _download(client, user, tmp_path):
    client.force_login(user)
    response = client.get("/c/acme/ledger/export")
    assert response.status_code == 200 and response.streaming
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(response.streaming_content))
    return response, path


def test_another_consortiums_entries_are_exported_as_leaf_hashes_only_and_the_root_still_verifies(
        client, member, world, tmp_path):
    other = receipt(ConsortiumFactory(slug="other"), memo="other consortium's secret")
    payable(world[0].consortium, "alpha", "5.00", statement="s-3")  # after the other consortium's entry
    checkpoint_create()
    _, path = _download(client, member("auditor"), tmp_path)
    assert b"secret" not in path.read_bytes() and b"other" not in path.read_bytes()
    lines = path.read_bytes().splitlines()
    assert json.loads(lines[1 + other.seq]) == {"leaf": bytes(other.leaf_hash).hex()}
    summary = verify_export.check_export(str(path), signing.public_key_bytes())
    assert summary.startswith("OK: 6 entries (5 of the consortium shown, 1 other entries as leaf hashes)")
    assert "checkpoint at size 6" in summary


def test_a_participant_exports_the_entries_that_concern_it_and_it_verifies(client, member, world, tmp_path):
    response, path = _download(client, member("participant"), tmp_path)
    assert response["Content-Disposition"] == 'attachment; filename="fairshare-ledger-acme-alpha-4.jsonl"'
    lines = [json.loads(line) for line in path.read_bytes().splitlines()[1:-1]]
    assert [set(line) == {"leaf"} for line in lines] == [True, False, True, False]  # beta's and the receipt hidden
    assert b"beta" not in path.read_bytes()
    summary = verify_export.check_export(str(path), signing.public_key_bytes())
    assert summary.startswith("OK: 4 entries (2 of participant alpha shown, 2 other entries as leaf hashes)")


@pytest.mark.parametrize("tamper", ["leaf", "shown", "foreign"])
def test_a_tampered_scoped_export_fails(client, member, world, tmp_path, tamper):
    _, path = _download(client, member("participant"), tmp_path)
    lines = path.read_bytes().splitlines()
    if tamper == "leaf":  # another leaf hash: the root no longer matches the signed one
        lines[1] = json.dumps({"leaf": "ab" * 32}, separators=(",", ":")).encode()
    elif tamper == "shown":  # an amount changed in an entry shown
        lines[2] = lines[2].replace(b'"600.00"', b'"700.00"').replace(b'"-600.00"', b'"-700.00"')
    else:  # an entry of beta's shown in alpha's export
        lines[3] = bytes(world[2].canonical)
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert verify_export.main([str(path), "--public-key", signing.public_key_info()["public_key"]]) == 1


# --- checkpoints --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [*STAFF, "participant"])
def test_everyone_in_the_consortium_sees_the_checkpoints_and_how_to_verify(client, member, world, consortium, role):
    receipt(consortium)
    checkpoint_create()
    html = page(client, member(role), "/c/acme/checkpoints/")
    latest = Checkpoint.objects.get(tree_size=5)
    assert 'data-testid="latest-tree-size">5<' in html and bytes(latest.root).hex() in html
    assert html.index(">5</a>") < html.index(">4</a>")  # newest first
    assert signing.public_key_info()["public_key"] in html
    assert "--statement statement.json --public-key" in html and "--old-note" in html


def test_the_checkpoint_csv_note_and_verifier_downloads(client, member, world):
    client.force_login(member("participant"))
    table = list(csv.reader(io.StringIO(client.get("/c/acme/checkpoints/?format=csv").content.decode())))
    checkpoint = Checkpoint.objects.get()
    assert table == [["Tree size", "Merkle root (hex)", "Signed at (UTC)", "Key id"],
                     ["4", bytes(checkpoint.root).hex(), checkpoint.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                      checkpoint.key_id]]
    note = client.get("/c/acme/checkpoints/?note=4")
    assert note["Content-Disposition"] == 'attachment; filename="checkpoint-4.txt"'
    assert note.content.decode() == checkpoint.note
    verify_export.note_verify(note.content.decode(), signing.public_key_bytes())
    assert client.get("/c/acme/checkpoints/?note=3").status_code == 404
    assert client.get("/c/acme/checkpoints/?note=x").status_code == 404
    assert client.get("/c/acme/checkpoints/?note=²").status_code == 404
    script = b"".join(client.get("/c/acme/checkpoints/?format=verifier").streaming_content)
    assert script.startswith(b"#!/usr/bin/env python3") and b"def check_statement" in script


# --- who may ------------------------------------------------------------------------------------


URLS = ["/c/acme/ledger/", "/c/acme/ledger/1/", "/c/acme/ledger/export", "/c/acme/checkpoints/"]


@pytest.mark.parametrize("url", URLS)
def test_anonymous_callers_are_sent_to_sign_in(client, world, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", URLS)
def test_a_member_of_another_consortium_gets_404(client, world, url):
    outsider = MembershipFactory(consortium=ConsortiumFactory(slug="other"), role="auditor").user
    page(client, outsider, url, status=404)


@pytest.mark.parametrize("url", URLS[:2] + URLS[3:])
def test_read_only_pages_offer_no_write_action_but_sign_out(client, member, world, url):
    html = page(client, member("auditor"), url)
    assert html.count('method="post"') == 1 and 'action="/logout/"' in html


# --- queries do not grow with the list ------------------------------------------------------------


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(("role", "url"), [
    ("auditor", "/c/acme/ledger/"),
    ("auditor", "/c/acme/ledger/?kind=transaction&account=revenue_pool&participant=alpha&date_from=2000-01-01"),
    ("auditor", "/c/acme/ledger/?page=last"),
    ("participant", "/c/acme/ledger/"),
    ("auditor", "/c/acme/ledger/1/"),
    ("participant", "/c/acme/ledger/1/"),
    ("participant", "/c/acme/checkpoints/"),
])
def test_a_page_issues_as_many_queries_for_a_long_ledger_as_for_a_short_one(
        client, member, world, consortium, django_assert_num_queries, role, url):
    client.force_login(member(role))
    small = queries(client, url)
    for n in range(70):
        payable(consortium, "alpha", "1.00", statement=f"s-{n}")
        receipt(consortium, "1.00")
        if n % 10 == 0:
            checkpoint_create()
    for slug in ("delta", "epsilon", "zeta"):
        ParticipantFactory(consortium=consortium, slug=slug)
    with django_assert_num_queries(small):
        client.get(url)


def test_a_pinned_key_that_is_not_the_ledgers_fails_the_export(client, member, world, tmp_path):
    client.force_login(member("auditor"))
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"".join(client.get("/c/acme/ledger/export").streaming_content))
    wrong = base64.b64encode(bytes(32)).decode()
    assert verify_export.main([str(path), "--public-key", wrong]) == 1
