"""``ledger_export``: the whole ledger as JSON Lines, for checking offline.

Line 1 is a header (format, origin, public key, number of entries, consortium slugs);
then one line per entry, which *is* the entry's canonical bytes (so its leaf hash is
SHA-256(0x00 || line)); the last line holds the latest checkpoint note. ``ledger/
verify_export.py`` checks such a file with the standard library and ``cryptography`` only.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import BinaryIO

from django.db import connection, transaction
from django.utils import timezone

from consortium.models import Consortium
from core.errors import InvalidInput
from ledger import signing
from ledger.canonical import format_time
from ledger.models import Checkpoint, LedgerEntry
from ledger.services.proofs import ledger_size

EXPORT_FORMAT = "fairshare-ledger-export"
EXPORT_VERSION = 1


@dataclass
class ExportSummary:
    entries: int
    checkpoint_size: int | None


def ledger_export(*, out: BinaryIO, chunk_size: int = 2000) -> ExportSummary:
    if chunk_size < 1:  # a chunk of none would end the export after the header, silently
        raise InvalidInput(f"The chunk size is at least 1, not {chunk_size}.", field="chunk_size")
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        size = ledger_size()
        checkpoint = Checkpoint.objects.filter(tree_size__lte=size).order_by("-tree_size").first()
        info = signing.public_key_info()
        header = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "exported_at": format_time(timezone.now()),
            "origin": info["origin"],
            "public_key": info["public_key"],
            "key_id": info["key_id"],
            "entries": size,
            "consortia": {str(pk): slug for pk, slug in Consortium.objects.values_list("pk", "slug")},
        }
        out.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        last_seq = -1
        while last_seq + 1 < size:
            chunk = list(
                LedgerEntry.objects.filter(seq__gt=last_seq, seq__lt=size)
                .order_by("seq")
                .values_list("seq", "canonical")[:chunk_size]
            )
            if not chunk:
                break
            for _, data in chunk:
                out.write(bytes(data) + b"\n")
            last_seq = chunk[-1][0]
        trailer = {"checkpoint": None}
        if checkpoint is not None:
            trailer["checkpoint"] = {
                "tree_size": checkpoint.tree_size,
                "root": bytes(checkpoint.root).hex(),
                "note": checkpoint.note,
                "public_key": base64.b64encode(bytes(checkpoint.public_key)).decode(),
            }
        out.write(json.dumps(trailer, sort_keys=True).encode() + b"\n")
    return ExportSummary(entries=size, checkpoint_size=checkpoint.tree_size if checkpoint else None)
