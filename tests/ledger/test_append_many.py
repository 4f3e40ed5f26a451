"""``entries_append``: a batch of entries in one transaction (one database call on
PostgreSQL) gives the entries, chain and tree that appending them one by one gives; a known
idempotency key returns its entry; one bad entry writes nothing of the batch."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest

from core.errors import InvalidInput
from ledger.models import LedgerEntry
from ledger.services import IdempotencyKeyReused, entries_append, entry_append
from ledger.services.verify import ledger_verify

pytestmark = pytest.mark.django_db(transaction=True)


def _payable(consortium, slug: str, amount: str, key: str) -> dict:
    return {"consortium": consortium, "kind": "transaction", "actor": "system:test", "reference_type": "statement",
            "reference_id": f"s-{key}", "participants": [slug], "idempotency_key": key, "body": {"note": key},
            "postings": [("revenue_pool:q1", -Decimal(amount), "EUR"),
                         (f"participant_payable:{slug}", Decimal(amount), "EUR")]}


def test_a_batch_appends_in_order_with_the_bytes_and_chain_of_single_appends(consortium, participants):
    single = entry_append(**_payable(consortium, "alpha", "1.00", "single"))
    batch = entries_append([_payable(consortium, p.slug, f"{i + 2}.00", f"batch-{i}") for i, p in enumerate(participants)])
    assert [entry.seq for entry in batch] == list(range(single.seq + 1, single.seq + 1 + len(participants)))
    for i, (participant, entry) in enumerate(zip(participants, batch, strict=True)):
        stored = LedgerEntry.objects.get(seq=entry.seq)
        assert bytes(stored.canonical) == bytes(entry.canonical) and bytes(stored.leaf_hash) == bytes(entry.leaf_hash)
        assert bytes(stored.prev_hash) == bytes(LedgerEntry.objects.get(seq=entry.seq - 1).leaf_hash)
        assert list(stored.participants.values_list("slug", flat=True)) == [participant.slug]
        assert stored.document["postings"][1]["amount"] == f"{i + 2}.00"
    report = ledger_verify()
    assert report.ok, report.problem


def test_a_known_idempotency_key_in_a_batch_returns_its_entry_and_a_reused_one_is_refused(consortium, participants):
    first = entries_append([_payable(consortium, "alpha", "5.00", "pay-alpha")])[0]
    again = entries_append([_payable(consortium, "alpha", "5.00", "pay-alpha"),
                            _payable(consortium, "beta", "6.00", "pay-beta")])
    assert again[0].seq == first.seq and again[1].seq == first.seq + 1
    assert LedgerEntry.objects.count() == 2
    with pytest.raises(IdempotencyKeyReused):
        entries_append([_payable(consortium, "alpha", "7.00", "pay-alpha")])
    assert LedgerEntry.objects.count() == 2


def test_one_bad_entry_writes_nothing_of_the_batch(consortium, participants):
    entry_append(**_payable(consortium, "alpha", "1.00", "before"))
    with pytest.raises(InvalidInput) as refused:
        entries_append([_payable(consortium, "alpha", "2.00", "ok"), _payable(consortium, "nobody", "3.00", "bad")])
    assert refused.value.field == "participants" and "nobody" in str(refused.value)
    unbalanced = _payable(consortium, "beta", "4.00", "unbalanced")
    unbalanced["postings"] = unbalanced["postings"][:1]
    with pytest.raises(InvalidInput):
        entries_append([_payable(consortium, "alpha", "2.00", "ok"), unbalanced])
    assert LedgerEntry.objects.count() == 1
    assert entries_append([]) == []


def test_the_migration_loads_the_released_batch_function():
    from ledger.sql import sql_text, versions

    assert versions("append_many") == ["append_many_v1.sql"]
    migration = importlib.import_module("ledger.migrations.0005_append_many")
    assert migration.FUNCTION == sql_text("append_many_v1.sql")


@pytest.mark.postgres
def test_the_database_runs_the_newest_batch_function():
    from django.db import connection

    from ledger.sql import sql_text, versions

    body = sql_text(versions("append_many")[-1]).split("$$")[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'fairshare_ledger_append_many'")
        assert [row[0] for row in cursor.fetchall()] == [body]
