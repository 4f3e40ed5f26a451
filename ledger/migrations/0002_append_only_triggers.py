"""Append-only triggers on every ledger table, for PostgreSQL and for SQLite.

PostgreSQL: a row-level BEFORE UPDATE OR DELETE trigger and a statement-level BEFORE
TRUNCATE trigger per table, ``ENABLE ALWAYS`` so that ``session_replication_role = replica``
does not skip them. TRUNCATE passes only when the transaction set the custom setting
``fairshare.allow_ledger_truncate`` to ``on`` (test flushes; see ledger/enforcement.py).
The head row may change, but only forward: its size never shrinks and, at equal size,
nothing else changes.

SQLite has no TRUNCATE; row-level triggers refuse UPDATE and DELETE, and DELETE passes only
while the connection's ``fairshare_ledger_flush_permitted()`` function says so.

The SQL is written out here, not imported, so that this migration never changes.
Note for later migrations: on SQLite, Django rebuilds a table to alter it, which drops its
triggers; such a migration must create them again (verify_ledger reports missing ones).
"""

from django.db import migrations, router

APPEND_ONLY = ["ledger_entry", "ledger_posting", "ledger_entry_participant", "ledger_node", "ledger_checkpoint"]
HEAD = "ledger_head"

PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION fairshare_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND coalesce(current_setting('fairshare.allow_ledger_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'ledger table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Corrections are new ledger entries.';
END;
$$;

CREATE OR REPLACE FUNCTION fairshare_ledger_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the ledger head cannot be deleted' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id <> OLD.id OR NEW.size < OLD.size
       OR (NEW.size = OLD.size AND (NEW.last_hash <> OLD.last_hash OR NEW.frontier <> OLD.frontier)) THEN
        RAISE EXCEPTION 'the ledger head only moves forward (size % -> %)', OLD.size, NEW.size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
"""


def _pg_table_sql(table: str, row_trigger: str, row_function: str, row_events: str) -> str:
    return f"""
CREATE TRIGGER {row_trigger} BEFORE {row_events} ON {table}
    FOR EACH ROW EXECUTE FUNCTION {row_function}();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION fairshare_ledger_append_only();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {row_trigger};
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate;
"""


PG_FORWARD = PG_FUNCTIONS + "".join(
    _pg_table_sql(table, f"{table}_append_only", "fairshare_ledger_append_only", "UPDATE OR DELETE")
    for table in APPEND_ONLY
) + _pg_table_sql(HEAD, f"{HEAD}_forward_only", "fairshare_ledger_head_forward_only", "UPDATE OR DELETE")

PG_REVERSE = "".join(
    f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}; DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};"
    for table in APPEND_ONLY
) + (
    f"DROP TRIGGER IF EXISTS {HEAD}_forward_only ON {HEAD}; DROP TRIGGER IF EXISTS {HEAD}_no_truncate ON {HEAD};"
    "DROP FUNCTION IF EXISTS fairshare_ledger_append_only(); DROP FUNCTION IF EXISTS fairshare_ledger_head_forward_only();"
)

SQLITE_FORWARD = [
    statement
    for table in APPEND_ONLY
    for statement in (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN "
        f"SELECT RAISE(ABORT, 'ledger table {table} is append-only: UPDATE is not allowed'); END",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"WHEN NOT fairshare_ledger_flush_permitted() BEGIN "
        f"SELECT RAISE(ABORT, 'ledger table {table} is append-only: DELETE is not allowed'); END",
    )
] + [
    f"CREATE TRIGGER {HEAD}_forward_only BEFORE UPDATE ON {HEAD} "
    "WHEN NEW.id <> OLD.id OR NEW.size < OLD.size "
    "OR (NEW.size = OLD.size AND (NEW.last_hash <> OLD.last_hash OR NEW.frontier <> OLD.frontier)) BEGIN "
    "SELECT RAISE(ABORT, 'the ledger head only moves forward'); END",
    f"CREATE TRIGGER {HEAD}_no_delete BEFORE DELETE ON {HEAD} "
    "WHEN NOT fairshare_ledger_flush_permitted() BEGIN "
    "SELECT RAISE(ABORT, 'the ledger head cannot be deleted'); END",
]

SQLITE_REVERSE = [
    f"DROP TRIGGER IF EXISTS {name}"
    for table in APPEND_ONLY
    for name in (f"{table}_no_update", f"{table}_no_delete")
] + [f"DROP TRIGGER IF EXISTS {HEAD}_forward_only", f"DROP TRIGGER IF EXISTS {HEAD}_no_delete"]


class VendorRunSQL(migrations.RunSQL):
    """RunSQL whose statements depend on the database vendor; other vendors get none."""

    def __init__(self, by_vendor: dict[str, tuple[object, object]]):
        self.by_vendor = by_vendor
        super().__init__(sql=migrations.RunSQL.noop, reverse_sql=migrations.RunSQL.noop)

    def deconstruct(self):
        return self.__class__.__name__, [], {"by_vendor": self.by_vendor}

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if router.allow_migrate(schema_editor.connection.alias, app_label, **self.hints):
            forward, _ = self.by_vendor.get(schema_editor.connection.vendor, ([], []))
            self._run_sql(schema_editor, forward)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if router.allow_migrate(schema_editor.connection.alias, app_label, **self.hints):
            _, reverse = self.by_vendor.get(schema_editor.connection.vendor, ([], []))
            self._run_sql(schema_editor, reverse)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [
        VendorRunSQL(
            {
                "postgresql": ([PG_FORWARD], [PG_REVERSE]),
                "sqlite": (SQLITE_FORWARD, SQLITE_REVERSE),
            }
        ),
    ]
