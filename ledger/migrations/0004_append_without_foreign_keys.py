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
"""

import importlib

from django.db import migrations, models
from django.db.models import deletion

_triggers = importlib.import_module("ledger.migrations.0002_append_only_triggers")
_previous_function = importlib.import_module("ledger.migrations.0003_append_function")

FUNCTION = r"""
CREATE OR REPLACE FUNCTION fairshare_ledger_append(
    p_kind text, p_consortium uuid, p_reference_type text, p_reference_id text, p_actor text,
    p_idempotency_key text, p_head bytea, p_middle bytea, p_after_seq bytea, p_tail bytea,
    p_accounts text[], p_currencies text[], p_amounts bigint[], p_participants text[]
) RETURNS TABLE (r_seq bigint, r_time text, r_prev bytea, r_leaf bytea, r_existing boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_size bigint; v_last bytea; v_frontier bytea; v_time text; v_data bytea; v_leaf bytea;
    v_hash bytea; v_level int := 0; v_index bigint; v_existing bigint; v_inserted int; v_ids uuid[];
BEGIN
    -- Before the head lock: the rows this entry names, locked FOR KEY SHARE until COMMIT (what
    -- a foreign key would lock at COMMIT, inside the head lock), so they cannot be deleted
    -- under it. An unknown consortium or participant is the caller's mistake.
    PERFORM 1 FROM consortium_consortium WHERE id = p_consortium FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No consortium %.', p_consortium USING ERRCODE = 'FSL03';
    END IF;
    IF cardinality(p_participants) > 0 THEN
        v_ids := ARRAY(SELECT id FROM consortium_participant
                       WHERE consortium_id = p_consortium AND slug = ANY(p_participants) ORDER BY slug FOR KEY SHARE);
        IF cardinality(v_ids) <> cardinality(p_participants) THEN
            RAISE EXCEPTION 'Not participants of {consortium}: %.', array_to_string(ARRAY(
                SELECT s FROM unnest(p_participants) AS s WHERE s NOT IN (
                    SELECT slug FROM consortium_participant WHERE consortium_id = p_consortium)
                ORDER BY s), ', ') USING ERRCODE = 'FSL02';
        END IF;
    END IF;
    -- Commit without waiting for the WAL flush, so the head lock is released before the fsync
    -- and concurrent appenders do not queue behind each other's disk writes. The caller
    -- (ledger.services.append) makes the entry durable right after COMMIT, outside the lock.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT size, last_hash, frontier INTO v_size, v_last, v_frontier FROM ledger_head WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- The first append ever (or after a test flush); concurrent first appenders queue
        -- on the inserted row, and only the one whose insert took effect checks for entries.
        INSERT INTO ledger_head (id, size, last_hash, frontier) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea, ''::bytea)
            ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted = 1 AND EXISTS (SELECT 1 FROM ledger_entry) THEN
            RAISE EXCEPTION 'the ledger head is missing but entries exist; refusing to start a second chain'
                USING ERRCODE = 'FSL01';
        END IF;
        SELECT size, last_hash, frontier INTO v_size, v_last, v_frontier FROM ledger_head WHERE id = 1 FOR UPDATE;
    END IF;
    IF length(v_frontier) <> 32 * length(replace(v_size::bit(64)::text, '0', '')) OR length(v_last) <> 32 THEN
        RAISE EXCEPTION 'the ledger head at size % is malformed', v_size USING ERRCODE = 'FSL01';
    END IF;
    IF p_idempotency_key IS NOT NULL THEN
        -- A concurrent retry may have committed while this call waited for the lock.
        SELECT seq INTO v_existing FROM ledger_entry WHERE idempotency_key = p_idempotency_key;
        IF FOUND THEN
            PERFORM set_config('fairshare.ledger_appended', v_existing || ' t', false);
            RETURN QUERY SELECT v_existing, NULL::text, NULL::bytea, NULL::bytea, true;
            RETURN;
        END IF;
    END IF;

    v_time := to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
    v_data := p_head || convert_to(encode(v_last, 'hex'), 'UTF8') || p_middle || convert_to(v_size::text, 'UTF8')
              || p_after_seq || convert_to(v_time, 'UTF8') || p_tail;
    v_leaf := sha256('\x00'::bytea || v_data);

    INSERT INTO ledger_entry (seq, kind, consortium_id, reference_type, reference_id, actor, created_at,
                              idempotency_key, prev_hash, leaf_hash, canonical)
    VALUES (v_size, p_kind, p_consortium, p_reference_type, p_reference_id, p_actor, v_time::timestamptz,
            p_idempotency_key, v_last, v_leaf, v_data);
    IF cardinality(p_accounts) > 0 THEN
        INSERT INTO ledger_posting (entry_id, line, account, currency, amount_minor)
        SELECT v_size, t.line - 1, t.account, t.currency, t.amount
        FROM unnest(p_accounts, p_currencies, p_amounts) WITH ORDINALITY AS t(account, currency, amount, line);
    END IF;
    IF cardinality(v_ids) > 0 THEN
        INSERT INTO ledger_entry_participant (entry_id, participant_id) SELECT v_size, t.id FROM unnest(v_ids) AS t(id);
    END IF;

    -- The leaf completes perfect subtree (0, size) and, while it is a right child, its parents;
    -- each left sibling is the last hash of the frontier.
    v_hash := v_leaf;
    v_index := v_size;
    INSERT INTO ledger_node (level, idx, hash) VALUES (0, v_size, v_leaf);
    WHILE v_index % 2 = 1 LOOP
        v_hash := sha256('\x01'::bytea || substring(v_frontier FROM length(v_frontier) - 31) || v_hash);
        v_frontier := substring(v_frontier FROM 1 FOR length(v_frontier) - 32);
        v_level := v_level + 1;
        v_index := v_index / 2;
        INSERT INTO ledger_node (level, idx, hash) VALUES (v_level, v_index, v_hash);
    END LOOP;
    UPDATE ledger_head SET size = v_size + 1, last_hash = v_leaf, frontier = v_frontier || v_hash WHERE id = 1;
    -- Session-scoped (kept after COMMIT) for the statement that follows in the same round trip.
    PERFORM set_config('fairshare.ledger_appended',
                       v_size || ' f ' || v_time || ' ' || encode(v_last, 'hex') || ' ' || encode(v_leaf, 'hex'), false);
    RETURN QUERY SELECT v_size, v_time, v_last, v_leaf, false;
END;
$$;
"""

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
        schema_editor.execute(_previous_function.FUNCTION, params=None)
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
