"""Reads for the ledger pages, on top of ``ledger.selectors`` (which the API uses too).

The list is newest first and paginated by key (``seq``), never by offset or count: the page
of entries 99,950-100,000 costs what the first page costs. Each row's figures (memo, total
per currency, participants) come from the entry's signed bytes, so a page of 50 entries is
one query whatever the number of postings. An entry's inclusion proof is built as the API
builds it (``api.EntryDetail``), against the latest checkpoint that covers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet

from ledger import selectors
from ledger.access import LedgerScope
from ledger.currencies import money_text
from ledger.forms import date_bounds
from ledger.models import LedgerEntry, Posting, ReferenceType
from ledger.services import inclusion_proof_get

PAGE_SIZE = 50
CSV_CHUNK = 1000
_SELECTOR_FILTERS = ("kind", "reference_type", "reference_id", "participant")
REFERENCE_LABELS = dict(ReferenceType.choices)


def page_entries(*, scope: LedgerScope, filters: dict) -> QuerySet[LedgerEntry]:
    """The entries the caller may see that match ``filters`` (LedgerFilterForm's valid
    values), newest first. A participant user gets only those that concern it."""
    chosen = {name: filters[name] for name in _SELECTOR_FILTERS if name in filters}
    entries = selectors.entry_list(consortium=scope.consortium, viewer=scope.viewer, **chosen, **date_bounds(filters))
    if filters.get("account"):
        with_account = Posting.objects.filter(entry=OuterRef("pk"), account__startswith=filters["account"])
        entries = entries.filter(Exists(with_account))
    if filters.get("seq_from") is not None:
        entries = entries.filter(seq__gte=filters["seq_from"])
    if filters.get("seq_to") is not None:
        entries = entries.filter(seq__lte=filters["seq_to"])
    return entries.order_by("-seq")


@dataclass(frozen=True)
class EntryRow:
    """One line of the list, read from the entry's signed bytes; the texts are made once
    here (a page renders 50 of them)."""

    entry: LedgerEntry
    seq: int
    time_text: str  # UTC, to the second (the signed time has microseconds)
    reference_label: str
    memo: str
    totals: list[tuple[Decimal, str]]  # per currency: the sum of the debits (what the entry moves)
    totals_text: str
    participants: list[str]


def entry_row(entry: LedgerEntry) -> EntryRow:
    document = entry.document
    totals = posting_totals(document["postings"])
    return EntryRow(
        entry=entry, seq=entry.seq, time_text=document["time"][:19].replace("T", " "), reference_label=REFERENCE_LABELS.get(
            entry.reference_type, entry.reference_type), memo=entry_memo(document["body"]), totals=totals,
        totals_text="; ".join(f"{money_text(amount, currency)} {currency}" for amount, currency in totals),
        participants=document["participants"],
    )


def entry_memo(body: dict) -> str:
    """What an entry is about, for a list: its memo, else its type (``pool_funding`` → pool funding)."""
    for key in ("memo", "type"):
        if isinstance(body.get(key), str):
            return body[key] if key == "memo" else body[key].replace("_", " ")
    return ""


def posting_totals(postings: list[dict]) -> list[tuple[Decimal, str]]:
    """Per currency (in the order they first appear), the sum of the positive amounts."""
    totals: dict[str, Decimal] = {}
    for posting in postings:
        amount = Decimal(posting["amount"])
        totals[posting["currency"]] = totals.get(posting["currency"], Decimal(0)) + max(amount, Decimal(0))
    return [(amount, currency) for currency, amount in totals.items()]


def posting_balances(postings: list[dict]) -> list[tuple[Decimal, str]]:
    """Per currency, the sum of all amounts: zero everywhere for a balanced transaction."""
    sums: dict[str, Decimal] = {}
    for posting in postings:
        sums[posting["currency"]] = sums.get(posting["currency"], Decimal(0)) + Decimal(posting["amount"])
    return [(amount, currency) for currency, amount in sums.items()]


@dataclass(frozen=True)
class EntryPage:
    """One page of the list, newest first, with the cursors of its neighbours."""

    rows: list[EntryRow]
    at_newest: bool
    newer_after: int | None  # ``?after=`` of the newer page, None when there is none
    older_before: int | None  # ``?before=`` of the older page
    at_oldest: bool


def entry_page(entries: QuerySet[LedgerEntry], *, before: int | None = None, after: int | None = None,
               oldest: bool = False, size: int = PAGE_SIZE) -> EntryPage:
    """A page of ``entries`` (ordered newest first): the newest, those before seq
    ``before``, those after seq ``after`` or the oldest; one query of ``size + 1`` rows."""
    if after is not None or oldest:
        upward = entries.order_by("seq")
        fetched = list((upward.filter(seq__gt=after) if after is not None else upward)[: size + 1])
        more_newer, more_older = len(fetched) > size, not oldest
        fetched = fetched[:size][::-1]
    else:
        fetched = list((entries.filter(seq__lt=before) if before is not None else entries)[: size + 1])
        more_older, more_newer = len(fetched) > size, before is not None
        fetched = fetched[:size]
    rows = [entry_row(entry) for entry in fetched]
    return EntryPage(
        rows=rows,
        at_newest=before is None and after is None and not oldest,
        newer_after=rows[0].entry.seq if rows and more_newer else None,
        older_before=rows[-1].entry.seq if rows and more_older else None,
        at_oldest=oldest,
    )


def entry_row_chunks(entries: QuerySet[LedgerEntry], *, chunk: int = CSV_CHUNK) -> Iterator[list[EntryRow]]:
    """Every entry of ``entries`` (newest first), ``chunk`` at a time, by key: for a CSV of
    any length in bounded memory. Entries appended meanwhile are newer than the first
    chunk, so they are left out rather than shifting the pages."""
    last: int | None = None
    while True:
        batch = list((entries if last is None else entries.filter(seq__lt=last))[:chunk])
        if not batch:
            return
        yield [entry_row(entry) for entry in batch]
        last = batch[-1].seq


def entry_inclusion(entry: LedgerEntry) -> dict | None:
    """The entry's inclusion proof against the latest checkpoint, shaped as the API's
    ``inclusion``; None until a checkpoint covers the entry."""
    checkpoint = selectors.checkpoint_covering(entry.seq)
    if checkpoint is None:
        return None
    hashes = inclusion_proof_get(seq=entry.seq, tree_size=checkpoint.tree_size)
    return {"leaf_index": entry.seq, "tree_size": checkpoint.tree_size, "root": bytes(checkpoint.root).hex(),
            "hashes": [value.hex() for value in hashes], "checkpoint": checkpoint}
