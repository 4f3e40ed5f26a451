"""Reads of the ledger for pages and the API, scoped to a consortium and, for participant
users, to the entries that concern their own organisation."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, QuerySet, Sum

from consortium.models import Consortium, Participant
from ledger.accounts import participant_accounts
from ledger.currencies import amount_text
from ledger.models import MAX_LEDGER_SIZE, Checkpoint, LedgerEntry, LedgerEntryParticipant, Posting


def _concerning(participant: Participant):
    return Exists(LedgerEntryParticipant.objects.filter(entry=OuterRef("pk"), participant=participant))


def entry_list(
    *,
    consortium: Consortium,
    viewer: Participant | None = None,
    kind: str | None = None,
    account: str | None = None,
    reference_type: str | None = None,
    reference_id: str | None = None,
    participant: Participant | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """The consortium's entries in sequence order; with ``viewer``, only those concerning it."""
    entries = LedgerEntry.objects.filter(consortium=consortium)
    if viewer is not None:
        entries = entries.filter(_concerning(viewer))
    if participant is not None:
        entries = entries.filter(_concerning(participant))
    if kind:
        entries = entries.filter(kind=kind)
    if account:
        entries = entries.filter(Exists(Posting.objects.filter(entry=OuterRef("pk"), account=account)))
    if reference_type:
        entries = entries.filter(reference_type=reference_type)
    if reference_id:
        entries = entries.filter(reference_id=reference_id)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return entries.order_by("seq")


def entry_get(*, consortium: Consortium, seq: int, viewer: Participant | None = None) -> LedgerEntry | None:
    """The entry, if it is the consortium's and (with ``viewer``) concerns that participant."""
    if not 0 <= seq <= MAX_LEDGER_SIZE:
        return None
    return entry_list(consortium=consortium, viewer=viewer).filter(seq=seq).first()


def balance_list(*, consortium: Consortium, viewer: Participant | None = None, as_of: int | None = None) -> list[dict]:
    """Per account and currency: the balance (debits positive) and the number of postings.

    A participant viewer sees only its own accounts (``participant_payable:<slug>``, ``paid:<slug>``).
    """
    postings = Posting.objects.filter(entry__consortium=consortium)
    if viewer is not None:
        postings = postings.filter(account__in=participant_accounts(viewer.slug))
    if as_of is not None:
        postings = postings.filter(entry__seq__lt=as_of)
    rows = (
        postings.values("account", "currency")
        .annotate(total=Sum("amount_minor"), count=Count("line"))
        .order_by("account", "currency")
    )
    return [
        {"account": row["account"], "currency": row["currency"],
         "balance": amount_text(row["total"], row["currency"]), "postings": row["count"]}
        for row in rows
    ]


def checkpoint_list() -> QuerySet[Checkpoint]:
    return Checkpoint.objects.order_by("-tree_size")


def checkpoint_at(tree_size: int) -> Checkpoint | None:
    if not 0 <= tree_size <= MAX_LEDGER_SIZE:
        return None
    return Checkpoint.objects.filter(tree_size=tree_size).first()


def checkpoint_covering(seq: int) -> Checkpoint | None:
    """The latest checkpoint, if it covers entry ``seq``."""
    latest = Checkpoint.objects.order_by("-tree_size").first()
    return latest if latest is not None and latest.tree_size > seq else None
