"""Append-only, layer by layer: each test tries to break one layer and must fail to."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from ledger.enforcement import APPEND_ONLY_TABLES, ledger_truncate_permitted, trigger_problems
from ledger.models import (
    AppendOnlyError,
    Checkpoint,
    LedgerEntry,
    LedgerEntryParticipant,
    LedgerHead,
    LedgerNode,
    Posting,
)
from ledger.services import checkpoint_create, entry_append
from ledger.services.verify import ledger_verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(consortium, participants, receipt):
    for _ in range(3):
        receipt(consortium)
    entry_append(consortium=consortium, kind="transaction", body={}, actor="system:test", reference_type="statement",
                 reference_id="s", postings=[("revenue_pool", Decimal("-1"), "EUR"), ("paid:alpha", Decimal("1"), "EUR")])
    checkpoint_create()


def _refused(sql, params=()):
    with pytest.raises(IntegrityError, match="append-only|only moves forward|cannot be deleted"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, list(params))


# --- layer 1: the models -----------------------------------------------------------------


@pytest.mark.parametrize("model", [LedgerEntry, Posting, LedgerEntryParticipant, LedgerNode, Checkpoint])
def test_the_models_refuse_to_change_or_delete_a_row(ledger, model):
    row = model.objects.first()
    with pytest.raises(AppendOnlyError):
        row.save()
    with pytest.raises(AppendOnlyError):
        row.delete()
    with pytest.raises(AppendOnlyError):
        model.objects.all().update(pk=row.pk) if model is not LedgerNode else model.objects.update(hash=b"")
    with pytest.raises(AppendOnlyError):
        model.objects.all().delete()


def test_the_head_cannot_be_deleted_through_the_model(ledger):
    with pytest.raises(AppendOnlyError):
        LedgerHead.objects.get().delete()
    with pytest.raises(AppendOnlyError):
        LedgerHead.objects.all().delete()


def test_an_entrys_participants_cannot_be_removed_through_the_relation(ledger):
    entry = LedgerEntry.objects.get(seq=3)
    with pytest.raises(AppendOnlyError):
        entry.participants.clear()


# --- layer 2: the triggers, on both databases ---------------------------------------------


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_the_database_refuses_update_and_delete_of_ledger_rows(ledger, table):
    column = {"ledger_entry": "actor", "ledger_posting": "account", "ledger_entry_participant": "participant_id",
              "ledger_node": "hash", "ledger_checkpoint": "origin"}[table]
    _refused(f"UPDATE {table} SET {column} = {column}")
    _refused(f"DELETE FROM {table}")


def test_the_head_only_moves_forward(ledger):
    _refused("UPDATE ledger_head SET size = size - 1")
    _refused("UPDATE ledger_head SET last_hash = %s", [bytes(32)])
    _refused("DELETE FROM ledger_head")
    assert LedgerHead.objects.get().size == 4


def test_all_enforcement_triggers_are_in_place(ledger):
    assert trigger_problems(connection) == []


def test_the_flush_permit_lets_a_transaction_empty_the_tables_and_verify_notices(ledger):
    tables = ("ledger_posting", "ledger_entry_participant", "ledger_node", "ledger_entry")
    with transaction.atomic(), ledger_truncate_permitted(connection), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the permit covers TRUNCATE only; row DELETEs still fail
            cursor.execute(f"TRUNCATE {', '.join(tables)}")
        else:
            for table in tables:
                cursor.execute(f"DELETE FROM {table}")
    assert not LedgerEntry.objects.exists()
    report = ledger_verify()
    assert not report.ok and "covers 4 entries but the ledger has only 0" in str(report.problem)
    _refused("DELETE FROM ledger_checkpoint")  # the permit ended with its block


# --- PostgreSQL: TRUNCATE, replica mode, ENABLE ALWAYS --------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("table", [*APPEND_ONLY_TABLES, "ledger_head"])
def test_postgres_refuses_truncate(ledger, table):
    _refused(f"TRUNCATE {table} CASCADE")


@pytest.mark.postgres
def test_postgres_triggers_fire_even_in_replica_mode(ledger):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
        _refused("UPDATE ledger_entry SET actor = 'mallory'")
        _refused("DELETE FROM ledger_posting")
        _refused("TRUNCATE ledger_entry CASCADE")


@pytest.mark.postgres
def test_postgres_triggers_are_enable_always(ledger):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND (c.relname LIKE 'ledger%%' OR t.tgname LIKE '%%_ledger_%%')"
        )
        rows = cursor.fetchall()
    assert len(rows) == 12 + 4  # and the delete and truncate guards of the two referenced tables
    assert {enabled for _, _, enabled in rows} == {"A"}


@pytest.mark.postgres
def test_postgres_truncate_with_a_deliberate_permit_is_caught_by_verify(ledger):
    # A DBA who knows the escape hatch and empties the ledger, then starts a new history.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL fairshare.allow_ledger_truncate = 'on'")
        cursor.execute("TRUNCATE ledger_posting, ledger_entry_participant, ledger_node, ledger_entry")
    report = ledger_verify()
    assert not report.ok and "entries were removed" in str(report.problem)


@pytest.mark.postgres
def test_postgres_truncate_of_everything_is_caught_only_by_a_checkpoint_held_outside(ledger, consortium, receipt):
    held = Checkpoint.objects.get().note
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL fairshare.allow_ledger_truncate = 'on'")
        cursor.execute(
            "TRUNCATE ledger_posting, ledger_entry_participant, ledger_node, ledger_entry, ledger_checkpoint, ledger_head"
        )
    receipt(consortium, amount="1.00")  # a new, shorter history starts cleanly
    assert ledger_verify().ok
    report = ledger_verify(held_notes=[("participant-copy.txt", held)])
    assert not report.ok and "held checkpoint participant-copy.txt" in str(report.problem)


@pytest.mark.postgres
def test_a_trigger_left_disabled_is_reported(ledger):
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE ledger_posting DISABLE TRIGGER ledger_posting_append_only")
    report = ledger_verify()
    assert not report.ok and "ledger_posting_append_only" in str(report.problem)


def test_sqlite_without_the_permit_function_still_refuses(ledger):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    import sqlite3

    raw = sqlite3.connect(":memory:")
    raw.executescript(
        "CREATE TABLE t (x); INSERT INTO t VALUES (1);"
        "CREATE TRIGGER t_no_delete BEFORE DELETE ON t WHEN NOT fairshare_ledger_flush_permitted() "
        "BEGIN SELECT RAISE(ABORT, 'append-only'); END;"
    )
    with pytest.raises(sqlite3.OperationalError, match="no such function"):
        raw.execute("DELETE FROM t")
