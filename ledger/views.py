"""Ledger pages: the entries with filters, an entry with its inclusion proof, the export an
auditor verifies offline, and the signed checkpoints with how to check them.

Who may read what is ``ledger/access.py``'s decision, as for the API: staff see every entry
of their consortium, a participant user only the entries that concern its organisation (404
for the others); the checkpoints are for everyone in the consortium.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse

from consortium.access import Capability, consortium_get, principal_for, require
from core.errors import NotAllowed, NotFound
from core.listing import Column, Table, filter_values, table_response
from core.spreadsheet import spreadsheet_text
from ledger import page_selectors, selectors, signing
from ledger.access import ledger_entry_get, ledger_scope_get
from ledger.forms import LedgerFilterForm
from ledger.models import MAX_LEDGER_SIZE
from ledger.serializers import EntryDetailOutput
from ledger.services.export import ledger_export

EXPORT_IN_MEMORY = 8 * 1024 * 1024  # a larger export is spooled to a temporary file
VERIFIER = Path(__file__).with_name("verify_export.py")
CSV_HEADER = ["seq", "time (UTC)", "kind", "reference type", "reference id", "memo", "total", "currency", "actor",
              "participants", "leaf hash"]


def _cursor(request) -> dict:
    """The page asked for: ``?before=SEQ`` (older), ``?after=SEQ`` (newer), ``?page=last``
    (the oldest); anything else is the newest page."""
    if request.GET.get("page") == "last":
        return {"oldest": True}
    for name in ("before", "after"):
        value = request.GET.get(name, "")
        if value.isascii() and value.isdigit() and int(value) <= MAX_LEDGER_SIZE:
            return {name: int(value)}
    return {}


@login_required
def ledger_page(request, slug):
    principal = principal_for(request)
    scope = ledger_scope_get(principal, slug)
    consortium = scope.consortium
    participants = consortium.participants.order_by("slug") if scope.viewer is None else None
    filters = LedgerFilterForm(request.GET or None, participants=participants)
    if filters.is_bound:
        filters.is_valid()
    entries = page_selectors.page_entries(scope=scope, filters=filter_values(filters))
    if request.GET.get("format") == "csv":
        return _entries_csv(entries, filename=f"ledger-{consortium.slug}.csv")
    context = {
        "consortium": consortium,
        "role": principal.role_in(consortium),
        "viewer": scope.viewer,
        "filters": filters,
        "page": page_selectors.entry_page(entries, **_cursor(request)),
        "participant_slugs": participants.values_list("slug", flat=True) if participants is not None else (),
        "entry_url": reverse("ledger-page", kwargs={"slug": consortium.slug}),
        "can_export": True,  # staff export the consortium's entries, a participant those concerning it
    }
    return render(request, "ledger/ledger.html", context)


def _entries_csv(entries, *, filename: str) -> StreamingHttpResponse:
    """Every filtered entry as CSV, streamed a chunk at a time (the list may hold 10^5 rows)."""

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        yield buffer.getvalue()
        for chunk in page_selectors.entry_row_chunks(entries):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(_csv_cells(row) for row in chunk)
            yield buffer.getvalue()

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _csv_cells(row: page_selectors.EntryRow) -> list:
    entry = row.entry
    texts = [entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), entry.kind, entry.reference_type, entry.reference_id,
             row.memo, "; ".join(f"{amount:f}" for amount, _ in row.totals),
             "; ".join(currency for _, currency in row.totals), entry.actor, " ".join(row.participants),
             bytes(entry.leaf_hash).hex()]
    return [entry.seq, *(spreadsheet_text(text) for text in texts)]


@login_required
def ledger_entry_page(request, slug, seq):
    principal = principal_for(request)
    scope = ledger_scope_get(principal, slug)
    entry = ledger_entry_get(scope, seq)
    inclusion = page_selectors.entry_inclusion(entry)
    if request.GET.get("format") == "json":
        return _entry_json(entry, inclusion, scope.consortium)
    document = entry.document
    balances = page_selectors.posting_balances(document["postings"])
    context = {
        "consortium": scope.consortium,
        "role": principal.role_in(scope.consortium),
        "entry": entry,
        "row": page_selectors.entry_row(entry),
        "document": document,
        "body_json": json.dumps(document["body"], indent=2, sort_keys=True, ensure_ascii=False),
        "canonical": bytes(entry.canonical).decode("utf-8"),
        "balances": balances,
        "balanced": all(amount == 0 for amount, _ in balances),
        "inclusion": inclusion,
        "public_key": signing.public_key_info(),
    }
    return render(request, "ledger/entry.html", context)


def _entry_json(entry, inclusion, consortium) -> JsonResponse:
    """The entry with its proof, exactly as the API's entry detail answers it: the file
    ``verify_export.py --entry`` checks."""
    entry.inclusion = inclusion
    response = JsonResponse(EntryDetailOutput(entry, context={"consortium": consortium}).data,
                            json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="ledger-entry-{entry.seq}.json"'
    return response


@login_required
def ledger_export_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_LEDGER)
    participant = None if principal.can(consortium, Capability.VIEW_ALL) else principal.own_participant(consortium)
    if participant is None and not principal.can(consortium, Capability.VIEW_ALL):
        raise NotAllowed("Only staff and participant users export the ledger.")
    spool, entries = _export_spooled(consortium, participant)
    name = f"fairshare-ledger-{consortium.slug}{f'-{participant.slug}' if participant else ''}-{entries}.jsonl"
    return FileResponse(spool, as_attachment=True, filename=name, content_type="application/x-ndjson")


def _export_spooled(consortium, participant):
    """``ledger_export`` scoped to the consortium (staff) or to the entries concerning the
    participant (a participant user) — other consortia's entries, or the other participants',
    appear as leaf hashes only — written to a temporary file, then streamed from there:
    memory stays bounded and no transaction waits on a slow download."""
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_IN_MEMORY)
    try:
        summary = ledger_export(out=spool, consortium=consortium, participant=participant)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool, summary.entries


CHECKPOINT_COLUMNS = [
    Column("Tree size", lambda c: c.tree_size, link=lambda c: f"?note={c.tree_size}", numeric=True),
    Column("Merkle root (hex)", lambda c: bytes(c.root).hex()),
    Column("Signed at (UTC)", lambda c: c.created_at.strftime("%Y-%m-%d %H:%M:%S")),
    Column("Key id", lambda c: c.key_id),
]


@login_required
def checkpoints_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW)
    if "note" in request.GET:
        return _checkpoint_note(request.GET["note"])
    if request.GET.get("format") == "verifier":
        return FileResponse(VERIFIER.open("rb"), as_attachment=True, filename=VERIFIER.name,
                            content_type="text/x-python")
    table = Table(columns=CHECKPOINT_COLUMNS, rows=selectors.checkpoint_list(), filename=f"checkpoints-{slug}",
                  caption="Signed checkpoints, newest first",
                  empty="No checkpoint yet: one is signed when statements are issued.")
    context = {
        "consortium": consortium,
        "role": principal.role_in(consortium),
        "latest": selectors.checkpoint_list().first(),
        "public_key": signing.public_key_info(),
    }
    return table_response(request, table=table, template="ledger/checkpoints.html", context=context)


def _checkpoint_note(size_text: str) -> HttpResponse:
    """The signed note of one checkpoint, as a text file to keep (``--old-note``)."""
    checkpoint = selectors.checkpoint_at(int(size_text)) if size_text.isascii() and size_text.isdigit() else None
    if checkpoint is None:
        raise NotFound("No checkpoint of that size.")
    response = HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="checkpoint-{checkpoint.tree_size}.txt"'
    return response
