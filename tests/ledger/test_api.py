"""The read-only ledger API: listing, filters, proofs, balances, checkpoints, consistency."""

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from openapi_spec_validator import validate

from ledger import merkle, signing
from ledger.notes import note_verify
from ledger.services import checkpoint_create, entry_append
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/consortia/acme/ledger"


@pytest.fixture
def ledger(consortium, participants, receipt):
    receipt(consortium, amount="1000.00")  # 0
    for slug, amount in (("alpha", "600.00"), ("beta", "400.00")):  # 1, 2
        entry_append(consortium=consortium, kind="transaction", body={"memo": f"statement {slug}"}, actor="system:test",
                     reference_type="statement", reference_id=f"s-{slug}",
                     postings=[("revenue_pool", -Decimal(amount), "EUR"), (f"participant_payable:{slug}", Decimal(amount), "EUR")])
    entry_append(consortium=consortium, kind="record", body={"digest": "ab" * 32}, actor="system:test",  # 3
                 reference_type="valuation_run", reference_id="7", participants=["alpha", "beta", "gamma"])
    first = checkpoint_create()
    entry_append(consortium=consortium, kind="transaction", body={}, actor="system:test", reference_type="statement",  # 4
                 reference_id="s-alpha", postings=[("participant_payable:alpha", Decimal("-600.00"), "EUR"),
                                                   ("paid:alpha", Decimal("600.00"), "EUR")])
    return first


@pytest.fixture
def finance(api_client, member):
    api_client.force_login(member("finance"))
    return api_client


@pytest.fixture
def alpha_user(api_client, member):
    api_client.force_login(member("participant"))
    return api_client


def _seqs(response):
    assert response.status_code == 200, response.content
    return [entry["seq"] for entry in response.json()["results"]]


def test_entries_are_listed_in_sequence_order_with_their_signed_content(finance, ledger):
    response = finance.get(f"{BASE}/entries/")
    assert _seqs(response) == [0, 1, 2, 3, 4]
    entry = response.json()["results"][1]
    assert entry["postings"] == [{"account": "revenue_pool", "amount": "-600.00", "currency": "EUR"},
                                 {"account": "participant_payable:alpha", "amount": "600.00", "currency": "EUR"}]
    assert entry["participants"] == ["alpha"] and entry["consortium"] == "acme" and entry["kind"] == "transaction"
    assert len(entry["leaf_hash"]) == 64 and entry["body"] == {"memo": "statement alpha"}


def test_entries_page_with_a_cursor(finance, ledger):
    first = finance.get(f"{BASE}/entries/?page_size=2").json()
    assert [e["seq"] for e in first["results"]] == [0, 1]
    second = finance.get(first["next"]).json()
    assert [e["seq"] for e in second["results"]] == [2, 3]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("kind=record", [3]),
        ("kind=transaction", [0, 1, 2, 4]),
        ("account=participant_payable:alpha", [1, 4]),
        ("account=paid:alpha", [4]),
        ("reference_type=statement&reference_id=s-alpha", [1, 4]),
        ("reference_type=valuation_run", [3]),
        ("participant=gamma", [3]),
        ("participant=beta", [2, 3]),
    ],
)
def test_entries_can_be_filtered(finance, ledger, query, expected):
    assert _seqs(finance.get(f"{BASE}/entries/?{query}")) == expected


def test_entries_can_be_filtered_by_time(finance, ledger):
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    assert _seqs(finance.get(f"{BASE}/entries/", {"since": later})) == []
    assert _seqs(finance.get(f"{BASE}/entries/", {"until": later})) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=memo", "kind"),
        ("account=cash", "account"),
        ("reference_type=invoice", "reference_type"),
        ("since=yesterday", "since"),
        ("since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", "until"),
        ("participant=nobody", "participant"),
        ("page_size=abc", "page_size"),
        ("page_size=5000", "page_size"),
        ("cursor=garbage", "cursor"),
    ],
)
def test_bad_entry_filters_are_400_with_a_message(finance, ledger, query, field):
    response = finance.get(f"{BASE}/entries/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["message"] or field in response.json()["error"]["details"]


def test_a_participant_sees_only_the_entries_that_concern_it(alpha_user, ledger):
    assert _seqs(alpha_user.get(f"{BASE}/entries/")) == [1, 3, 4]
    assert alpha_user.get(f"{BASE}/entries/2/").status_code == 404
    assert alpha_user.get(f"{BASE}/entries/?participant=beta").status_code == 400


def test_an_entry_comes_with_an_inclusion_proof_against_the_latest_checkpoint(alpha_user, ledger):
    body = alpha_user.get(f"{BASE}/entries/1/").json()
    inclusion = body["inclusion"]
    assert inclusion["tree_size"] == 4 and inclusion["leaf_index"] == 1
    leaf = merkle.leaf_hash(body["canonical"].encode())
    assert leaf.hex() == body["leaf_hash"]
    merkle.verify_inclusion(leaf, 1, 4, [bytes.fromhex(h) for h in inclusion["hashes"]], bytes.fromhex(inclusion["root"]))
    signed = note_verify(inclusion["checkpoint"]["note"], public_keys=[signing.public_key_bytes()])
    assert signed.root.hex() == inclusion["root"] and signed.tree_size == 4


def test_an_entry_newer_than_the_latest_checkpoint_has_no_proof_yet(finance, ledger):
    assert finance.get(f"{BASE}/entries/4/").json()["inclusion"] is None
    checkpoint_create()
    assert finance.get(f"{BASE}/entries/4/").json()["inclusion"]["tree_size"] == 5
    assert finance.get(f"{BASE}/entries/1/?tree_size=4").json()["inclusion"]["tree_size"] == 4
    assert finance.get(f"{BASE}/entries/4/?tree_size=4").status_code == 400
    assert finance.get(f"{BASE}/entries/1/?tree_size=x").status_code == 400


def test_balances_sum_the_postings_per_account(finance, ledger):
    body = finance.get(f"{BASE}/balances/").json()
    balances = {row["account"]: row["balance"] for row in body["balances"]}
    assert balances == {"consortium_income": "-1000.00", "revenue_pool": "0.00", "participant_payable:alpha": "0.00",
                        "participant_payable:beta": "400.00", "paid:alpha": "600.00"}
    assert body["as_of"] == 5
    early = {row["account"]: row["balance"] for row in finance.get(f"{BASE}/balances/?as_of=2").json()["balances"]}
    assert early["participant_payable:alpha"] == "600.00" and "participant_payable:beta" not in early
    assert finance.get(f"{BASE}/balances/?as_of=-1").status_code == 400


def test_a_participant_sees_only_its_own_balances(alpha_user, ledger):
    accounts = [row["account"] for row in alpha_user.get(f"{BASE}/balances/").json()["balances"]]
    assert accounts == ["paid:alpha", "participant_payable:alpha"]


def test_checkpoints_are_listed_newest_first(finance, ledger):
    checkpoint_create()
    body = finance.get("/api/v1/ledger/checkpoints/").json()
    assert [c["tree_size"] for c in body["results"]] == [5, 4]
    assert finance.get("/api/v1/ledger/checkpoints/latest/").json()["tree_size"] == 5
    assert finance.get("/api/v1/ledger/checkpoints/4/").json()["note"] == ledger.note
    assert finance.get("/api/v1/ledger/checkpoints/3/").status_code == 404


def test_no_checkpoint_yet_is_404(finance, consortium):
    assert finance.get("/api/v1/ledger/checkpoints/latest/").status_code == 404


def test_a_held_checkpoint_is_proven_consistent_with_a_newer_one(alpha_user, ledger):
    newer = checkpoint_create()
    body = alpha_user.get("/api/v1/ledger/consistency/?old=4").json()
    assert (body["old_size"], body["new_size"]) == (4, 5)
    assert body["new_checkpoint"]["note"] == newer.note and body["old_checkpoint"]["note"] == ledger.note
    merkle.verify_consistency(4, 5, [bytes.fromhex(h) for h in body["proof"]], bytes(ledger.root), bytes(newer.root))


@pytest.mark.parametrize("query", ["old=x", "old=2&new=1", "old=0&new=3", "old=1&new=99", "new=3", "old=1.5"])
def test_bad_consistency_parameters_are_400(finance, ledger, query):
    response = finance.get(f"/api/v1/ledger/consistency/?{query}")
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_the_public_key_is_published(api_client):
    body = api_client.get("/api/v1/ledger/public-key/").json()
    assert body == signing.public_key_info() and body["algorithm"] == "Ed25519"


def test_a_read_key_sees_what_finance_sees(api_client, ledger, consortium):
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")
    assert _seqs(api_client.get(f"{BASE}/entries/")) == [0, 1, 2, 3, 4]


def test_the_offline_verifier_checks_what_the_api_returns(alpha_user, ledger, tmp_path):
    from tests.ledger.test_export import run_verifier

    newer = checkpoint_create()
    public_key = signing.public_key_info()["public_key"]
    (tmp_path / "entry.json").write_text(json.dumps(alpha_user.get(f"{BASE}/entries/4/").json()))
    result = run_verifier(tmp_path, "--entry", tmp_path / "entry.json", "--public-key", public_key)
    assert result.returncode == 0, result.stderr
    assert "entry 4 (transaction: participant_payable:alpha -600.00 EUR, paid:alpha 600.00 EUR)" in result.stdout
    (tmp_path / "old.txt").write_text(ledger.note)
    (tmp_path / "proof.json").write_text(json.dumps(alpha_user.get("/api/v1/ledger/consistency/?old=4").json()))
    result = run_verifier(tmp_path, "--consistency", tmp_path / "proof.json", "--old-note", tmp_path / "old.txt",
                          "--public-key", public_key)
    assert result.returncode == 0, result.stderr
    assert f"ledger of {newer.tree_size} entries" in result.stdout


def test_the_schema_documents_every_ledger_endpoint_and_is_valid():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate(json.loads(json.dumps(schema, default=str)))
    paths = set(schema["paths"])
    assert {
        "/api/v1/consortia/{slug}/ledger/entries/", "/api/v1/consortia/{slug}/ledger/entries/{seq}/",
        "/api/v1/consortia/{slug}/ledger/balances/", "/api/v1/ledger/checkpoints/", "/api/v1/ledger/checkpoints/latest/",
        "/api/v1/ledger/checkpoints/{tree_size}/", "/api/v1/ledger/consistency/", "/api/v1/ledger/public-key/",
    } <= paths


def _cursor(query: str) -> str:
    return base64.b64encode(query.encode()).decode()


@pytest.mark.parametrize("position", ["abc", "1e3", "9" * 40, str(2**63), "", "١٢"])
def test_a_well_formed_cursor_with_a_meaningless_position_is_400(finance, ledger, position):
    for url in ("/api/v1/consortia/acme/ledger/entries/", "/api/v1/ledger/checkpoints/"):
        response = finance.get(url, {"cursor": _cursor(f"p={position}")})
        assert response.status_code == 400, (url, position, response.content[:200])
        assert response.json()["error"]["details"] == {"cursor": ["Invalid cursor; use the next/previous links as given."]}


@pytest.mark.parametrize("query", [f"tree_size={2**64}", f"tree_size={2**63}", "tree_size=99999999999999999999999"])
def test_a_proof_size_beyond_64_bits_is_400_not_an_overflow(finance, ledger, query):
    response = finance.get(f"/api/v1/consortia/acme/ledger/entries/1/?{query}")
    assert response.status_code == 400 and "tree_size" in response.json()["error"]["details"]


@pytest.mark.parametrize("url", [f"/api/v1/consortia/acme/ledger/entries/{2**64}/",
                                 f"/api/v1/ledger/checkpoints/{2**70}/"])
def test_an_id_beyond_64_bits_in_the_path_is_404(finance, ledger, url):
    response = finance.get(url)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", [f"old=1&new={2**63}", f"old={2**64}", f"as_of={2**63}"])
def test_consistency_and_balance_sizes_beyond_64_bits_are_400(finance, ledger, query):
    url = "/api/v1/consortia/acme/ledger/balances/" if "as_of" in query else "/api/v1/ledger/consistency/"
    response = finance.get(f"{url}?{query}")
    assert response.status_code == 400, response.content[:200]
