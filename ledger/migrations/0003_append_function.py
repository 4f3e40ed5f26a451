"""PostgreSQL: ``fairshare_ledger_append``, the locked part of ``entry_append`` in one statement.

Why: the head row stays locked until COMMIT, so the time between lock and commit bounds the
throughput of every appender. Done from Python it takes three round trips (lock and read,
write, commit); as one function call under autocommit it takes one. The function knows
nothing of the entry's format: Python canonicalises the entry (RFC 8785) around the three
values only the locked head knows (previous hash, sequence number, time) and sends the
pieces; the function splices them, hashes the leaf, folds the Merkle nodes the leaf
completes, and writes the entry, postings, participant links, nodes and head. Python then
rebuilds the same bytes and checks the leaf hash, and ``verify_ledger`` recomputes
everything independently. SQLite uses the equivalent Python path in ledger/services/append.py.

The function's SQL is ledger/sql/append_v1.sql (released, never edited).
"""

from django.db import migrations

from ledger.sql import sql_text

FUNCTION = sql_text("append_v1.sql")

REVERSE = """
DROP FUNCTION IF EXISTS fairshare_ledger_append(text, uuid, text, text, text, text, bytea, bytea, bytea, bytea,
                                                text[], text[], bigint[], text[]);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_append_only_triggers")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
