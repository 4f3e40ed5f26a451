"""An auditor's journey in a real browser: the ledger filtered by kind, an entry with its
postings and inclusion proof, the checkpoints, and the export checked offline with the
stand-alone verifier, as an auditor would run it; and no write action anywhere on the way."""

import base64
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from ledger import signing
from ledger.services import checkpoint_create, entry_append, inclusion_proof_get
from tests.browser.steps import csp_violations, sign_in
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VERIFIER = Path(settings.BASE_DIR) / "ledger" / "verify_export.py"
# The verifier runs with Django and the project made unimportable: it must need neither.
ISOLATED = ("import runpy, sys; sys.modules.update({'django': None, 'ledger': None, 'consortium': None}); "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def _ledger():
    """seq 0 a receipt, 1-2 statements' payables, 3 a dispute decision (a record); signed at 4."""
    consortium = ConsortiumFactory(slug="acme", name="Acme Consortium")
    for slug in ("alpha", "beta"):
        ParticipantFactory(consortium=consortium, slug=slug)

    def move(debit: str, credit: str, amount: str, reference: tuple[str, str], memo: str):
        return entry_append(consortium=consortium, kind="transaction", body={"memo": memo}, actor="system:test",
                            postings=[(credit, -Decimal(amount), "EUR"), (debit, Decimal(amount), "EUR")],
                            reference_type=reference[0], reference_id=reference[1])

    move("revenue_pool:2026-q1", "consortium_income", "250000.00", ("revenue_pool", "2026-q1"), "Licence income")
    move("participant_payable:alpha", "revenue_pool:2026-q1", "150000.00", ("statement", "s-alpha"), "Alpha Q1")
    move("participant_payable:beta", "revenue_pool:2026-q1", "100000.00", ("statement", "s-beta"), "Beta Q1")
    entry_append(consortium=consortium, kind="record", body={"type": "dispute_decision", "outcome": "rejected"},
                 actor="user:governance@acme.test", reference_type="dispute", reference_id="d-1",
                 participants=["alpha"])
    checkpoint_create()
    return consortium


def _read_only(page) -> None:
    """The only form that posts is sign-out; the only buttons filter and sign out."""
    expect(page.locator("form[method=post]")).to_have_count(1)
    expect(page.locator("form[method=post]")).to_have_attribute("action", "/logout/")
    names = {name.strip() for name in page.get_by_role("button").all_inner_texts()}
    assert names <= {"Filter", "Sign out"}, names


def test_an_auditor_filters_the_ledger_checks_a_proof_and_verifies_the_export(page, live_server, tmp_path):
    MembershipFactory(user=UserFactory(username="auditor@acme.test"), role="auditor", consortium=_ledger())
    violations = csp_violations(page)

    sign_in(page, live_server.url, "auditor@acme.test")
    page.get_by_role("link", name="Acme Consortium").click()
    expect(page.get_by_role("heading", name="Acme Consortium")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Ledger").click()
    expect(page.get_by_role("heading", name="Ledger")).to_be_visible()
    entries = page.get_by_role("table", name="Ledger entries, newest first")
    expect(entries.get_by_role("row")).to_have_count(5)  # the header and four entries
    _read_only(page)

    page.get_by_label("Kind").select_option("record")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]kind=record"))
    for _ in range(2):  # the filter lives in the URL: a reload keeps it
        expect(entries.get_by_role("row")).to_have_count(2)
        expect(entries).to_contain_text("dispute decision")
        expect(page.get_by_label("Kind")).to_have_value("record")
        page.reload()

    page.get_by_label("Kind").select_option("transaction")
    page.get_by_role("button", name="Filter").click()
    expect(entries.get_by_role("row")).to_have_count(4)
    page.get_by_role("link", name="Entry 1", exact=True).click()
    expect(page.get_by_role("heading", name="Ledger entry 1")).to_be_visible()
    postings = page.get_by_test_id("postings")
    expect(postings).to_contain_text("participant_payable:alpha")
    expect(postings).to_contain_text("-150000.00")
    expect(postings.locator("tfoot")).to_contain_text("0.00")
    expect(page.get_by_test_id("balance-state")).to_have_text("balanced")
    proof = page.get_by_test_id("inclusion-proof")
    hashes = inclusion_proof_get(seq=1, tree_size=4)
    expect(proof.locator("tbody tr")).to_have_count(len(hashes))
    for value in hashes:
        expect(proof).to_contain_text(value.hex())
    expect(page.get_by_test_id("proof-tree-size")).to_have_text("4")
    _read_only(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Checkpoints").click()
    expect(page.get_by_test_id("latest-tree-size")).to_have_text("4")
    public_key = base64.b64encode(signing.public_key_bytes()).decode()
    expect(page.get_by_test_id("public-key")).to_have_text(public_key)
    _read_only(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Ledger").click()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export the ledger for offline verification").click()
    download = download_info.value
    assert download.suggested_filename == "fairshare-ledger-acme-4.jsonl"
    exported = tmp_path / download.suggested_filename
    download.save_as(exported)

    script = tmp_path / "verify_export.py"
    shutil.copy(VERIFIER, script)
    checked = subprocess.run([sys.executable, "-I", "-c", ISOLATED, str(script), str(exported),
                              "--public-key", public_key], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK: 4 entries (4 of the consortium shown, 0 other entries as leaf hashes)")
    assert violations == []
