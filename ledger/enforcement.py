"""Database-side enforcement of the append-only ledger, and the one sanctioned way around it.

The triggers themselves are created by migrations (``0002_append_only_triggers``): on
PostgreSQL a row-level trigger raises on UPDATE and DELETE and a statement-level trigger on
TRUNCATE, all ``ENABLE ALWAYS`` so ``session_replication_role = replica`` does not skip them;
on SQLite row-level triggers raise on UPDATE and DELETE. The head row (``ledger_head``) may
only move forward.

Emptying the tables is refused unless the transaction holds a *truncate permit*: on
PostgreSQL the custom setting ``fairshare.allow_ledger_truncate = on`` (set with ``SET
LOCAL``, so it ends with the transaction), on SQLite a per-thread flag read through an SQL
function registered on each connection. Test flushes use the permit (see
``ledger/testing.py``); anyone else who uses it is rewriting history, which ``verify_ledger``
and the checkpoints held outside the database reveal.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

TRUNCATE_PERMIT_SETTING = "fairshare.allow_ledger_truncate"
SQLITE_PERMIT_FUNCTION = "fairshare_ledger_flush_permitted"

APPEND_ONLY_TABLES = ("ledger_entry", "ledger_posting", "ledger_entry_participant", "ledger_node", "ledger_checkpoint")
HEAD_TABLE = "ledger_head"
# Rows that ledger entries refer to; guarded against deletion instead of by foreign keys (0004).
REFERENCED_TABLES = ("consortium_consortium", "consortium_participant")
ALL_TABLES = (*APPEND_ONLY_TABLES, HEAD_TABLE)

_sqlite_permit = threading.local()


def _sqlite_flush_permitted() -> int:
    return 1 if getattr(_sqlite_permit, "on", False) else 0


def sqlite_register_functions(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: the SQLite triggers call this function."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(SQLITE_PERMIT_FUNCTION, 0, _sqlite_flush_permitted)


@contextmanager
def ledger_truncate_permitted(connection):
    """Inside this block, the current transaction may TRUNCATE (PostgreSQL) or DELETE from
    (SQLite) the ledger tables. For test-database flushes; never used by the application."""
    if connection.vendor == "postgresql":
        if not connection.in_atomic_block:
            raise RuntimeError("the truncate permit is SET LOCAL: use it inside transaction.atomic()")
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', true)", [TRUNCATE_PERMIT_SETTING])
        try:
            yield
        finally:
            if not connection.needs_rollback and connection.is_usable():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, 'off', true)", [TRUNCATE_PERMIT_SETTING])
    elif connection.vendor == "sqlite":
        _sqlite_permit.on = True
        try:
            yield
        finally:
            _sqlite_permit.on = False
    else:
        yield


# Trigger name -> what it must guard; checked by verify_ledger so that a disabled or dropped
# trigger is reported, not silently relied upon.
def expected_triggers(vendor: str) -> dict[str, str]:
    if vendor == "postgresql":
        triggers = {}
        for table in APPEND_ONLY_TABLES:
            triggers[f"{table}_append_only"] = table
            triggers[f"{table}_no_truncate"] = table
        triggers[f"{HEAD_TABLE}_forward_only"] = HEAD_TABLE
        triggers[f"{HEAD_TABLE}_no_truncate"] = HEAD_TABLE
        for table in REFERENCED_TABLES:
            triggers[f"{table}_ledger_referenced"] = table
            triggers[f"{table}_ledger_no_truncate"] = table
        return triggers
    if vendor == "sqlite":
        triggers = {}
        for table in APPEND_ONLY_TABLES:
            triggers[f"{table}_no_update"] = table
            triggers[f"{table}_no_delete"] = table
        triggers[f"{HEAD_TABLE}_forward_only"] = HEAD_TABLE
        triggers[f"{HEAD_TABLE}_no_delete"] = HEAD_TABLE
        for table in REFERENCED_TABLES:
            triggers[f"{table}_ledger_referenced"] = table
        return triggers
    return {}


def trigger_problems(connection) -> list[str]:
    """What is wrong with the enforcement triggers (append-only tables, forward-only head,
    guards on the referenced tables): missing, or not ENABLE ALWAYS."""
    expected = expected_triggers(connection.vendor)
    if not expected:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname, c.relname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname = ANY(%s)",
                [[*ALL_TABLES, *REFERENCED_TABLES]],
            )
            found = {name: (table, enabled) for name, table, enabled in cursor.fetchall()}
        else:
            cursor.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
            found = {name: (table, "A") for name, table in cursor.fetchall()}
    problems = []
    for name, table in expected.items():
        if name not in found or found[name][0] != table:
            problems.append(f"ledger trigger {name} on {table} is missing")
        elif found[name][1] != "A":
            problems.append(f"ledger trigger {name} on {table} is not ENABLE ALWAYS (state {found[name][1]!r})")
    return problems
