"""PostgreSQL: ``fairshare_ledger_append_many``, several appends in one round trip.

Why: a service that appends a batch inside its own transaction (issuing a revenue pool: an
entry per statement) paid a round trip per entry, about half of issuing's time for 1,000
statements (benchmarks/settlement.py). The function calls ``fairshare_ledger_append`` for
each entry in order, so every entry takes the same locks and checks as one appended alone.
SQLite appends the batch one by one in Python. The SQL is ledger/sql/append_many_v1.sql
(released, never edited).
"""

from django.db import migrations

from ledger.sql import sql_text

FUNCTION = sql_text("append_many_v1.sql")
REVERSE = "DROP FUNCTION IF EXISTS fairshare_ledger_append_many(jsonb);"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_append_without_foreign_keys")]
    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
