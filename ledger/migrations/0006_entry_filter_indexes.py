"""Indexes for the ledger page's filters, newest first: by kind, and by reference with seq.

Why: the page lists a consortium's entries by ``seq`` descending, 50 at a time, filtered.
With only ``(consortium, seq)``, a rare filter value (``kind=record``, or a reference whose
entries are old) walks the consortium's whole index: about 30 ms at 10^5 entries on
PostgreSQL 15, growing with the ledger. ``(consortium, kind, seq)`` and
``(consortium, reference_type, reference_id, seq)`` serve those filters in index order:
about 1 ms at 10^5 entries. The second replaces ``(consortium, reference_type,
reference_id)``, which it extends (the services' lookups by reference use its prefix), so an
append maintains one index more than before. One writer's appends measured the same within
noise (1,740 and 1,769 per second, medians of three runs each).

Both databases: CREATE INDEX and DROP INDEX only, so SQLite does not rebuild the table (and
its append-only triggers stay in place).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("ledger", "0005_append_many")]
    operations = [
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["consortium", "kind", "seq"], name="ledger_entry_kind_seq"),
        ),
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(fields=["consortium", "reference_type", "reference_id", "seq"],
                               name="ledger_entry_reference_seq"),
        ),
        migrations.RemoveIndex(model_name="ledgerentry", name="ledger_entry_reference"),
    ]
