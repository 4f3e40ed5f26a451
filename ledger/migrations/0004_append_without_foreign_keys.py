"""Appends without foreign-key checks under the head lock, and in one round trip.

Why: every append holds the one head row locked until its COMMIT, so whatever runs before
that COMMIT is paid by every writer of the deployment. Django's foreign keys are DEFERRABLE
INITIALLY DEFERRED: their checks (entry -> consortium, posting -> entry, link -> entry,
link -> participant) ran at COMMIT, inside the lock, each a query that also locked the
referenced row. This migration drops those four constraints and keeps what they protected:

- the append function (replaced here) takes KEY SHARE locks on the consortium row and on the
  participant rows *before* it takes the head lock, as the foreign keys did at COMMIT, so a
  consortium or participant cannot be deleted while an entry that names it is being written;
- BEFORE DELETE triggers on consortium_consortium and consortium_participant refuse to
  delete a row that ledger entries refer to, and BEFORE TRUNCATE triggers refuse to empty
  those tables while the ledger has entries (except under the test-flush permit of
  ledger/enforcement.py); Django's ``on_delete=PROTECT`` still refuses first in the ORM;
- postings and participant links can only be written by the append function, in the entry's
  own transaction, and never changed or deleted (0002), so a link to a missing entry cannot
  arise; ``verify_ledger`` reports rows that belong to no entry all the same.

The function also leaves its result in the session setting ``fairshare.ledger_appended``,
so that ``entry_append`` can send the append, its COMMIT and the durability flush as one
round trip (``BEGIN; SELECT ...; COMMIT; SELECT current_setting(...), pg_current_xact_id()``),
of which the driver returns only the last result.

On SQLite, Django rebuilds the three tables to drop their constraints (and again to restore
them when unapplying), which drops their append-only triggers: they are created again here,
both ways, with the delete guards.

The function's SQL is ledger/sql/append_v2.sql; unapplying restores ledger/sql/append_v1.sql.
"""

import importlib

from django.db import migrations, models
from django.db.models import deletion

from ledger.sql import sql_text

_triggers = importlib.import_module("ledger.migrations.0002_append_only_triggers")

FUNCTION = sql_text("append_v2.sql")
PREVIOUS_FUNCTION = sql_text("append_v1.sql")

# Deleting what ledger entries refer to. An append in flight holds its consortium and
# participant rows FOR KEY SHARE, so the DELETE waits for its COMMIT and this check (a fresh
# snapshot per statement in READ COMMITTED) then sees its entry. Locking the head as well
# makes a REPEATABLE READ delete fail on an append made after its snapshot, instead of
# missing it; an append that comes later finds the row gone.
PG_GUARDS = r"""
CREATE OR REPLACE FUNCTION fairshare_ledger_referenced_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF coalesce(current_setting('fairshare.allow_ledger_truncate', true), '') <> 'on'
           AND EXISTS (SELECT 1 FROM ledger_entry) THEN
            RAISE EXCEPTION '% cannot be emptied: ledger entries refer to its rows', TG_TABLE_NAME
                USING ERRCODE = 'foreign_key_violation';
        END IF;
        RETURN NULL;
    END IF;
    PERFORM 1 FROM ledger_head WHERE id = 1 FOR UPDATE;
    IF (TG_TABLE_NAME = 'consortium_consortium'
            AND EXISTS (SELECT 1 FROM ledger_entry WHERE consortium_id = OLD.id))
       OR (TG_TABLE_NAME = 'consortium_participant'
            AND EXISTS (SELECT 1 FROM ledger_entry_participant WHERE participant_id = OLD.id)) THEN
        RAISE EXCEPTION '% % cannot be deleted: ledger entries refer to it', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Ledger entries are permanent.';
    END IF;
    RETURN OLD;
END;
$$;
""" + "".join(
    f"""
CREATE TRIGGER {table}_ledger_referenced BEFORE DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION fairshare_ledger_referenced_guard();
CREATE TRIGGER {table}_ledger_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION fairshare_ledger_referenced_guard();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_ledger_referenced;
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_ledger_no_truncate;
"""
    for table in ("consortium_consortium", "consortium_participant")
)

PG_GUARDS_REVERSE = """
DROP TRIGGER IF EXISTS consortium_consortium_ledger_referenced ON consortium_consortium;
DROP TRIGGER IF EXISTS consortium_consortium_ledger_no_truncate ON consortium_consortium;
DROP TRIGGER IF EXISTS consortium_participant_ledger_referenced ON consortium_participant;
DROP TRIGGER IF EXISTS consortium_participant_ledger_no_truncate ON consortium_participant;
DROP FUNCTION IF EXISTS fairshare_ledger_referenced_guard();
"""

SQLITE_GUARDS = [
    "CREATE TRIGGER consortium_consortium_ledger_referenced BEFORE DELETE ON consortium_consortium "
    "WHEN NOT fairshare_ledger_flush_permitted() AND EXISTS (SELECT 1 FROM ledger_entry WHERE consortium_id = OLD.id) "
    "BEGIN SELECT RAISE(ABORT, 'consortium_consortium row cannot be deleted: ledger entries refer to it'); END",
    "CREATE TRIGGER consortium_participant_ledger_referenced BEFORE DELETE ON consortium_participant "
    "WHEN NOT fairshare_ledger_flush_permitted() "
    "AND EXISTS (SELECT 1 FROM ledger_entry_participant WHERE participant_id = OLD.id) "
    "BEGIN SELECT RAISE(ABORT, 'consortium_participant row cannot be deleted: ledger entries refer to it'); END",
]
SQLITE_GUARDS_REVERSE = [
    "DROP TRIGGER IF EXISTS consortium_consortium_ledger_referenced",
    "DROP TRIGGER IF EXISTS consortium_participant_ledger_referenced",
]

# The tables Django rebuilds on SQLite, and their append-only triggers from 0002.
_REBUILT = ("ledger_entry", "ledger_posting", "ledger_entry_participant")
SQLITE_APPEND_ONLY_AGAIN = [
    statement.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1)
    for statement in _triggers.SQLITE_FORWARD
    if any(f" ON {table} " in statement for table in _REBUILT)
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        schema_editor.execute(PG_GUARDS, params=None)
    elif vendor == "sqlite":
        for statement in [*SQLITE_APPEND_ONLY_AGAIN, *SQLITE_GUARDS]:
            schema_editor.execute(statement, params=None)


def sqlite_append_only_again(apps, schema_editor):
    """Unapplying rebuilds the tables once more (with their constraints): recreate the triggers."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY_AGAIN:
            schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_GUARDS_REVERSE, params=None)
        schema_editor.execute(PREVIOUS_FUNCTION, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_GUARDS_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_append_function"), ("consortium", "0001_initial")]

    operations = [
        # Runs last when unapplying, after the tables were rebuilt.
        migrations.RunPython(migrations.RunPython.noop, sqlite_append_only_again, elidable=False),
        migrations.AlterField(
            model_name="ledgerentry",
            name="consortium",
            field=models.ForeignKey(
                db_constraint=False, db_index=False, on_delete=deletion.PROTECT, related_name="ledger_entries",
                to="consortium.consortium",
            ),
        ),
        migrations.AlterField(
            model_name="posting",
            name="entry",
            field=models.ForeignKey(
                db_constraint=False, db_index=False, on_delete=deletion.PROTECT, related_name="postings",
                to="ledger.ledgerentry",
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentryparticipant",
            name="entry",
            field=models.ForeignKey(
                db_constraint=False, db_index=False, on_delete=deletion.PROTECT, related_name="+", to="ledger.ledgerentry"
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentryparticipant",
            name="participant",
            field=models.ForeignKey(
                db_constraint=False, on_delete=deletion.PROTECT, related_name="+", to="consortium.participant"
            ),
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
