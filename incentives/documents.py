"""A statement as a document a participant can file: JSON, CSV, PDF and the web page.

Everything a document shows comes from ``statement_document``: the JSON is that dict, and
``statement_rows`` turns it into the label/value rows that the CSV, the page and the PDF
show (the page and the PDF from one template, ``incentives/statement.html``). So a figure
cannot differ between formats, and every figure the page shows is one the JSON commits to.

The JSON (format ``fairshare-statement``, version 1) carries what a participant needs to
check it offline with ``ledger/verify_export.py --statement``: the statement's ledger entry
(its canonical bytes, as the ledger hashes them), the entry's inclusion proof against the
smallest signed checkpoint that covers it, that checkpoint's signed note, and the ledger's
public key. Figures are text, never JSON numbers: money as decimal strings with exactly the
currency's decimals, measures (contribution, standard error, interval) as Python ``repr``
of the stored float (the shortest text that reads back to the same number, as the ledger
entry records them), shares as the exact fraction ``p/q`` beside a rounded decimal.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from decimal import Decimal
from fractions import Fraction
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from core.spreadsheet import spreadsheet_text
from incentives.models import AllocationPolicy, Statement
from ledger.canonical import canonical_bytes
from ledger.currencies import money_text
from ledger.models import Checkpoint, LedgerEntry
from ledger.services import inclusion_proof_get

__all__ = [
    "DOCUMENT_FORMAT",
    "DOCUMENT_VERSION",
    "TEMPLATE",
    "document_sha256",
    "per_round_chart",
    "share_decimal",
    "statement_csv",
    "statement_document",
    "statement_filename",
    "statement_page_context",
    "statement_pdf",
    "statement_rows",
]

DOCUMENT_FORMAT = "fairshare-statement"
DOCUMENT_VERSION = 1
TEMPLATE = "incentives/statement.html"
_SHARE_PLACES = Decimal("1e-10")
# A pool's reference is a slug when it comes through the API; the filename does not rely on it.
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


# --- the JSON document ----------------------------------------------------------------------


def statement_document(*, statement: Statement) -> dict:
    """The statement as the JSON document every other format is drawn from.

    ``document_sha256`` is the hex SHA-256 of the RFC 8785 (JCS) canonical JSON of the
    document without its ``document_sha256`` member: UTF-8, keys sorted, no whitespace.
    The document holds no JSON floats (figures are text), so the canonical form is plain
    ``json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
    """
    pool = statement.pool
    document = {
        "format": DOCUMENT_FORMAT,
        "version": DOCUMENT_VERSION,
        "statement": _figures(statement),
        "per_round": _per_round(statement),
        "pool": {"id": str(pool.pk), "reference": pool.reference, "period": pool.period,
                 "currency": pool.currency, "amount": money_text(pool.amount, pool.currency),
                 "consortium": pool.consortium.slug},
        "policy": _policy(pool.policy, pool.currency),
        "ledger": _ledger(statement),
    }
    document["document_sha256"] = document_sha256(document)
    return document


def document_sha256(document: dict) -> str:
    """The hash ``statement_document`` puts in ``document_sha256`` (that member left out)."""
    content = {key: value for key, value in document.items() if key != "document_sha256"}
    return hashlib.sha256(canonical_bytes(content)).hexdigest()




def share_decimal(share: str) -> str:
    """An exact share 'p/q' as a decimal rounded to 10 places, for reading."""
    exact = Fraction(share)
    return f"{(Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(_SHARE_PLACES):f}"


def _figures(statement: Statement) -> dict:
    currency = statement.pool.currency
    return {
        "id": str(statement.pk), "version": statement.version, "status": statement.status,
        "supersedes": None if statement.supersedes_id is None else str(statement.supersedes_id),
        "participant": statement.participant.slug, "participant_name": statement.participant.name,
        "currency": currency,
        "amount": money_text(statement.amount, currency), "allocated": money_text(statement.allocated, currency),
        "carried_in": money_text(statement.carried_in, currency), "carried_out": money_text(statement.carried_out, currency),
        "share": statement.share, "share_decimal": share_decimal(statement.share),
        "contribution": repr(statement.contribution), "contribution_stderr": repr(statement.contribution_stderr),
        "ci_low": repr(statement.ci_low), "ci_high": repr(statement.ci_high), "ci_level": "0.95",
        "methods": list(statement.methods), "data_volume": str(statement.data_volume),
        "issued_at": None if statement.issued_at is None else statement.issued_at.isoformat(),
    }


def _per_round(statement: Statement) -> list[dict]:
    """The per-round contributions, ordered by valuation run then round number."""
    rows = []
    for key, value in statement.per_round.items():
        run, _, round_text = str(key).rpartition(":")
        rows.append({"valuation_run": run, "round": round_text, "value": repr(float(value))})
    return sorted(rows, key=lambda row: (row["valuation_run"], _round_number(row["round"]), row["round"]))


def _round_number(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _limit_text(amount: Decimal, currency: str) -> str:
    """A policy's minimum payout in the pool's currency; a policy is not tied to one
    currency, so a minimum finer than this one's minor unit (0.5 for a JPY pool) is
    written as it is."""
    try:
        return money_text(amount, currency)
    except ValueError:
        return f"{Decimal(amount).normalize():f}"


def _policy(policy: AllocationPolicy, currency: str) -> dict:
    return {
        "version": policy.version,
        "reserve_rate": f"{policy.reserve_rate:f}", "floor_share": f"{policy.floor_share:f}",
        "cap_share": None if policy.cap_share is None else f"{policy.cap_share:f}",
        "blend_alpha": f"{policy.blend_alpha:f}",
        "minimum_payout": _limit_text(policy.minimum_payout, currency),
        "ledger_entry_seq": policy.ledger_entry_seq,
    }


def _ledger(statement: Statement) -> dict:
    """The statement's entries, and the proof that its own entry is in a signed checkpoint.

    The checkpoint is the smallest that covers the entry (normally the one signed when the
    pool was issued), so the proof a participant receives does not change with every later
    checkpoint; a draft has no entry, so no proof.
    """
    # A statement's entries are all in its pool's consortium's ledger; naming the consortium
    # lets the (consortium, reference) index answer instead of a scan of every entry.
    seqs = list(LedgerEntry.objects.filter(consortium_id=statement.pool.consortium_id, reference_type="statement",
                                           reference_id=str(statement.pk)).order_by("seq").values_list("seq", flat=True))
    seq = statement.ledger_entry_seq
    ledger = {"entry_seqs": seqs, "entry_seq": seq, "entry": None, "inclusion": None, "checkpoint": None}
    if seq is None:
        ledger["note"] = "A draft statement is not in the ledger: it has no entry and no proof yet."
        return ledger
    entry = LedgerEntry.objects.get(seq=seq)
    ledger["entry"] = {"seq": seq, "canonical": bytes(entry.canonical).decode("utf-8"),
                       "leaf_hash": bytes(entry.leaf_hash).hex()}
    checkpoint = Checkpoint.objects.filter(tree_size__gt=seq).order_by("tree_size").first()
    if checkpoint is None:
        ledger["note"] = "No signed checkpoint covers the entry yet."
        return ledger
    hashes = inclusion_proof_get(seq=seq, tree_size=checkpoint.tree_size)
    ledger["inclusion"] = {"leaf_index": seq, "tree_size": checkpoint.tree_size,
                           "root": bytes(checkpoint.root).hex(), "hashes": [h.hex() for h in hashes]}
    ledger["checkpoint"] = {"tree_size": checkpoint.tree_size, "note": checkpoint.note,
                            "origin": checkpoint.origin, "key_id": checkpoint.key_id,
                            "public_key": base64.b64encode(bytes(checkpoint.public_key)).decode()}
    return ledger


# --- rows: what the CSV, the page and the PDF show -------------------------------------------


def statement_rows(*, statement: Statement | None = None, document: dict | None = None) -> list[tuple[str, str]]:
    """The document as (label, value) rows, in reading order; give the statement or its
    document (already built, to avoid building it twice)."""
    if document is None:
        document = statement_document(statement=statement)
    figures, pool, policy, ledger = document["statement"], document["pool"], document["policy"], document["ledger"]
    currency = figures["currency"]
    rows = [
        ("Statement", figures["id"]), ("Version", str(figures["version"])), ("Status", figures["status"]),
        ("Participant", f"{figures['participant_name']} ({figures['participant']})"),
        ("Consortium", pool["consortium"]), ("Pool", pool["reference"]), ("Period", pool["period"]),
        ("Pool amount", f"{pool['amount']} {currency}"),
        ("Amount", f"{figures['amount']} {currency}"), ("Allocated", f"{figures['allocated']} {currency}"),
        ("Carried in", f"{figures['carried_in']} {currency}"), ("Carried out", f"{figures['carried_out']} {currency}"),
        ("Share (exact)", figures["share"]), ("Share", figures["share_decimal"]),
        ("Contribution", figures["contribution"]), ("Standard error", figures["contribution_stderr"]),
        ("95% interval", f"[{figures['ci_low']}, {figures['ci_high']}]"),
        ("Methods", ", ".join(figures["methods"]) or "none"), ("Data volume (examples)", figures["data_volume"]),
        ("Issued at", figures["issued_at"] or "not issued"),
        *_policy_rows(policy),
        *_ledger_rows(ledger),
        ("Document SHA-256", document["document_sha256"]),
    ]
    rows += [(f"Round {r['round']} of run {r['valuation_run']}", r["value"]) for r in document["per_round"]]
    return rows


def _policy_rows(policy: dict) -> list[tuple[str, str]]:
    return [
        ("Policy version", str(policy["version"])), ("Reserve rate", policy["reserve_rate"]),
        ("Floor share", policy["floor_share"]), ("Cap share", policy["cap_share"] or "none"),
        ("Blend (contribution weight)", policy["blend_alpha"]), ("Minimum payout", policy["minimum_payout"]),
    ]


def _ledger_rows(ledger: dict) -> list[tuple[str, str]]:
    rows = [("Ledger entries", ", ".join(str(seq) for seq in ledger["entry_seqs"]) or "none")]
    if ledger["entry"] is not None:
        rows.append(("Leaf hash", ledger["entry"]["leaf_hash"]))
    if ledger["inclusion"] is not None:
        rows += [("Checkpoint tree size", str(ledger["inclusion"]["tree_size"])),
                 ("Checkpoint root", ledger["inclusion"]["root"]),
                 ("Inclusion proof", " ".join(ledger["inclusion"]["hashes"]) or "empty (the tree is one entry)")]
    if "note" in ledger:
        rows.append(("Ledger", ledger["note"]))
    return rows


def statement_csv(*, statement: Statement) -> str:
    """The rows as two-column CSV; every cell is text a spreadsheet program will not run."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["item", "value"])
    for label, value in statement_rows(statement=statement):
        writer.writerow([spreadsheet_text(label), spreadsheet_text(value)])
    return buffer.getvalue()


def statement_filename(statement: Statement, extension: str) -> str:
    """A download name from slugs only (safe in a Content-Disposition header)."""
    name = f"statement-{statement.pool.reference}-{statement.participant.slug}-v{statement.version}"
    return f"{_UNSAFE_IN_FILENAME.sub('-', name)}.{extension}"


# --- the page and the PDF ---------------------------------------------------------------------

_CHART_WIDTH, _CHART_HEIGHT, _CHART_PAD = 640, 180, 24


def per_round_chart(per_round: list[dict]) -> dict | None:
    """Geometry of an SVG bar chart of the per-round values, drawn by the template: bars
    above the zero line for positive values, below for negative ones."""
    if not per_round:
        return None
    values = [float(row["value"]) for row in per_round]
    top, bottom = max(0.0, *values), min(0.0, *values)
    span = (top - bottom) or 1.0
    plot = _CHART_HEIGHT - 2 * _CHART_PAD
    zero_y = _CHART_PAD + plot * top / span
    slot = (_CHART_WIDTH - 2 * _CHART_PAD) / len(values)
    bars = []
    for index, (row, value) in enumerate(zip(per_round, values, strict=True)):
        height = plot * abs(value) / span
        bars.append({"x": round(_CHART_PAD + index * slot + slot * 0.15, 2), "width": round(slot * 0.7, 2),
                     "y": round(zero_y - height if value >= 0 else zero_y, 2), "height": round(max(height, 0.5), 2),
                     "negative": value < 0, "label": row["round"], "value": row["value"],
                     "label_x": round(_CHART_PAD + (index + 0.5) * slot, 2)})
    return {"width": _CHART_WIDTH, "height": _CHART_HEIGHT, "zero_y": round(zero_y, 2),
            "axis_end": _CHART_WIDTH - _CHART_PAD, "pad": _CHART_PAD, "label_y": _CHART_HEIGHT - 6,
            "top": repr(top), "bottom": repr(bottom), "bars": bars}


def statement_page_context(*, statement: Statement) -> dict:
    """What the template needs, for the page and the PDF alike."""
    document = statement_document(statement=statement)
    return {"statement": statement, "consortium": statement.pool.consortium, "document": document,
            "rows": statement_rows(document=document), "chart": per_round_chart(document["per_round"])}


def statement_pdf(*, statement: Statement) -> bytes:
    """The page's template rendered to PDF (print CSS: A4, page numbers, no navigation)."""
    from weasyprint import HTML  # imported here: loading Pango costs ~0.3 s, only PDFs need it

    html = render_to_string(TEMPLATE, {**statement_page_context(statement=statement), "for_print": True})
    return HTML(string=html, base_url=_BASE_URL, url_fetcher=_static_fetcher()).write_pdf()


# The template's stylesheet links resolve against this made-up origin, so the fetcher can
# tell them apart from anything else.
_BASE_URL = "https://fairshare.invalid/"


def _static_fetcher():
    """A WeasyPrint URL fetcher that serves the template's stylesheets from the static files
    and fetches nothing else: a PDF rendered on the server must not reach the network or
    the file system, whatever a figure in the document says."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnly(URLFetcher):
        def fetch(self, url, headers=None):
            prefix = urljoin(_BASE_URL, settings.STATIC_URL)
            relative = url.removeprefix(prefix) if url.startswith(prefix) and ".." not in url else None
            found = finders.find(relative) if relative and relative.endswith(".css") else None
            if not found:
                raise ValueError(f"not fetched: {url}")
            with open(found, "rb") as handle:
                return URLFetcherResponse(url, handle.read(), {"Content-Type": "text/css; charset=utf-8"})

    return StaticOnly()
