"""Test-suite support: let Django's test flushes empty the append-only ledger tables.

``TransactionTestCase`` (pytest-django's ``transactional_db``) cleans up with ``flush``,
which TRUNCATEs every table on PostgreSQL, and DELETEs from every table on SQLite. The
ledger's triggers refuse both unless the transaction holds the truncate permit, so the test
suite wraps Django's flush in that permit, and only the flush:

    # tests/conftest.py
    from ledger.testing import permit_ledger_flush
    permit_ledger_flush()

The permit is transaction-scoped (``SET LOCAL`` on PostgreSQL), so it cannot leak into the
test that runs next, and tests that TRUNCATE by hand still meet the trigger.
"""

from __future__ import annotations

from django.db import transaction
from django.db.backends.base.operations import BaseDatabaseOperations

from ledger.enforcement import ledger_truncate_permitted


def permit_ledger_flush() -> None:
    """Wrap ``execute_sql_flush`` of every backend in the ledger truncate permit (idempotent)."""
    original = BaseDatabaseOperations.execute_sql_flush
    if getattr(original, "permits_ledger_truncate", False):
        return

    def execute_sql_flush(self, sql_list):
        with transaction.atomic(using=self.connection.alias, savepoint=self.connection.features.can_rollback_ddl):
            with ledger_truncate_permitted(self.connection):
                original(self, sql_list)

    execute_sql_flush.permits_ledger_truncate = True
    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
