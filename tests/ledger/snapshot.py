"""``ledger_snapshot()``: everything the appends wrote, as JSON-ready data.

Used by tests/ledger/test_append_paths.py in the test process (PostgreSQL) and in a fresh
process on SQLite; the two must be equal, so this module needs nothing from pytest.
"""

from __future__ import annotations

from django.db import connection

from ledger.models import LedgerEntry, LedgerEntryParticipant, LedgerHead, LedgerNode, Posting
from ledger.services import tree_root
from ledger.services.verify import ledger_verify


def ledger_snapshot() -> dict:
    head = LedgerHead.objects.values_list("size", "last_hash", "frontier").get()
    size = head[0]
    report = ledger_verify()
    return {
        "vendor": connection.vendor,
        "entries": [
            {"seq": seq, "canonical": bytes(data).decode(), "leaf": bytes(leaf).hex(), "prev": bytes(prev).hex(),
             "kind": kind, "reference": [reference_type, reference_id], "actor": actor,
             "idempotency_key": idempotency_key, "time": created_at.isoformat()}
            for seq, data, leaf, prev, kind, reference_type, reference_id, actor, idempotency_key, created_at
            in LedgerEntry.objects.order_by("seq").values_list(
                "seq", "canonical", "leaf_hash", "prev_hash", "kind", "reference_type", "reference_id", "actor",
                "idempotency_key", "created_at")
        ],
        "postings": [list(row) for row in Posting.objects.order_by("entry_id", "line").values_list(
            "entry_id", "line", "account", "currency", "amount_minor")],
        "participant_links": sorted(
            [entry_id, str(participant_id)]
            for entry_id, participant_id in LedgerEntryParticipant.objects.values_list("entry_id", "participant_id")
        ),
        "nodes": [[level, index, bytes(value).hex()] for level, index, value in
                  LedgerNode.objects.order_by("level", "index").values_list("level", "index", "hash")],
        "head": [size, bytes(head[1]).hex(), bytes(head[2]).hex()],
        "roots": [tree_root(size=n).hex() for n in range(size + 1)],
        "verified": [report.ok, str(report.problem or ""), report.root.hex()],
    }
