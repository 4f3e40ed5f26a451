"""``ledger_export``: the ledger as JSON Lines, for checking offline.

Line 1 is a header (format, origin, public key, number of entries, consortium slugs);
then one line per entry, which *is* the entry's canonical bytes (so its leaf hash is
SHA-256(0x00 || line)); the last line holds the latest checkpoint note. ``ledger/
verify_export.py`` checks such a file with the standard library and ``cryptography`` only.

A deployment hosts several consortia in one ledger, and a consortium's auditor may not
read the others' entries. A *scoped* export (``consortium=``, or ``participant=`` for the
entries that concern one participant) writes every other entry as ``{"leaf": "<hex>"}``,
its leaf hash only: the verifier still recomputes the Merkle root over every leaf against
the signed checkpoint and checks the hash chain through each entry it can read, so the
scope's entries are proven to sit, unaltered, at their places in the signed tree, while
nothing of the other entries is shown but a hash.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import BinaryIO

from django.db import connection, transaction
from django.db.models import BinaryField, BooleanField, Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from consortium.models import Consortium, Participant
from core.errors import InvalidInput
from ledger import signing
from ledger.canonical import format_time
from ledger.models import Checkpoint, LedgerEntry, LedgerEntryParticipant
from ledger.services.proofs import ledger_size

EXPORT_FORMAT = "fairshare-ledger-export"
EXPORT_VERSION = 1


@dataclass
class ExportSummary:
    entries: int
    checkpoint_size: int | None


def ledger_export(*, out: BinaryIO, chunk_size: int = 2000, consortium: Consortium | None = None,
                  participant: Participant | None = None) -> ExportSummary:
    """Write the ledger to ``out``: every entry, or with ``consortium`` (and ``participant``)
    the scope's entries in full and every other entry as its leaf hash."""
    if chunk_size < 1:  # a chunk of none would end the export after the header, silently
        raise InvalidInput(f"The chunk size is at least 1, not {chunk_size}.", field="chunk_size")
    if participant is not None and (consortium is None or participant.consortium_id != consortium.pk):
        raise InvalidInput("A participant's export is scoped to its own consortium.", field="participant")
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
            "consortia": _consortia(consortium),
        }
        if consortium is not None:
            header["scope"] = {"consortium": str(consortium.pk),
                               "participant": participant.slug if participant is not None else None}
        out.write(json.dumps(header, sort_keys=True).encode() + b"\n")
        last_seq = -1
        while last_seq + 1 < size:
            chunk = list(
                _visible(LedgerEntry.objects.filter(seq__gt=last_seq, seq__lt=size), consortium, participant)
                .order_by("seq")
                .values_list("seq", "visible", "shown", "leaf_hash")[:chunk_size]
            )
            if not chunk:
                break
            for _, visible, data, leaf in chunk:  # a hidden entry: its leaf hash, nothing else
                out.write(bytes(data) + b"\n" if visible else b'{"leaf":"%s"}\n' % bytes(leaf).hex().encode())
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


def _consortia(scope: Consortium | None) -> dict[str, str]:
    rows = Consortium.objects.filter(pk=scope.pk) if scope is not None else Consortium.objects.all()
    return {str(pk): slug for pk, slug in rows.values_list("pk", "slug")}


def _visible(entries, consortium: Consortium | None, participant: Participant | None):
    """Annotate ``visible``: whether the export shows the entry's content or only its leaf hash.
    Hidden entries' bytes are not read at all (``canonical`` is replaced by empty bytes)."""
    if consortium is None:
        return entries.annotate(visible=Value(True), shown=F("canonical"))
    scope = Q(consortium=consortium)
    if participant is not None:
        scope &= Exists(LedgerEntryParticipant.objects.filter(entry=OuterRef("pk"), participant=participant))
    return entries.annotate(
        visible=Case(When(scope, then=Value(True)), default=Value(False), output_field=BooleanField()),
        shown=Case(When(scope, then=F("canonical")), default=Value(b""), output_field=BinaryField()),
    )
