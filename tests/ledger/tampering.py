"""What a database superuser can do to the ledger, for the tests that must catch it.

On PostgreSQL the superuser disables the triggers with ``ALTER TABLE … DISABLE TRIGGER ALL``
(``session_replication_role = replica`` does not help against ENABLE ALWAYS) and enables
them again afterwards; on SQLite they are dropped and re-created. Tests run inside a
transaction that is rolled back, so nothing outlives the test.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection

from ledger import canonical, merkle
from ledger.currencies import to_minor
from ledger.enforcement import ALL_TABLES, expected_triggers


@contextmanager
def triggers_disabled(*tables: str):
    tables = tables or ALL_TABLES
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The test's own inserts still have deferred FK checks queued, and PostgreSQL
            # refuses to ALTER a table with pending trigger events: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            yield cursor
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
            for name, table in expected_triggers("postgresql").items():
                if table in tables:
                    cursor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")
        else:
            placeholders = ", ".join(["%s"] * len(tables))
            cursor.execute(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({placeholders})",
                list(tables),
            )
            saved = cursor.fetchall()
            for name, _ in saved:
                cursor.execute(f"DROP TRIGGER {name}")
            yield cursor
            for _, sql in saved:
                cursor.execute(sql)


def tamper(sql: str, params=None, *, tables=ALL_TABLES) -> None:
    with triggers_disabled(*tables) as cursor:
        cursor.execute(sql, params or [])


def rewrite_history(change) -> None:
    """Rewrite every entry through ``change(document) -> document`` and recompute every hash,
    posting, Merkle node and the head: all a superuser can do without the signing key."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq, canonical FROM ledger_entry ORDER BY seq")
        rows = [(seq, bytes(data)) for seq, data in cursor.fetchall()]
    prev, frontier = canonical.GENESIS_PREV, []
    with triggers_disabled() as cursor:
        cursor.execute("DELETE FROM ledger_node")
        cursor.execute("DELETE FROM ledger_posting")
        for seq, data in rows:
            document = change(json.loads(data))
            document["prev"] = prev.hex()
            new = canonical.canonical_bytes(document)
            leaf = merkle.leaf_hash(new)
            cursor.execute(
                "UPDATE ledger_entry SET canonical = %s, leaf_hash = %s, prev_hash = %s, kind = %s, actor = %s, "
                "reference_type = %s, reference_id = %s, idempotency_key = %s WHERE seq = %s",
                [new, leaf, prev, document["kind"], document["actor"], document["reference"]["type"],
                 document["reference"]["id"], document["idempotency_key"], seq],
            )
            for line, posting in enumerate(document["postings"]):
                cursor.execute(
                    "INSERT INTO ledger_posting (entry_id, line, account, currency, amount_minor) VALUES (%s, %s, %s, %s, %s)",
                    [seq, line, posting["account"], posting["currency"],
                     to_minor(Decimal(posting["amount"]), posting["currency"])],
                )
            frontier, nodes = merkle.frontier_append(frontier, seq, leaf)
            for level, index, value in nodes:
                cursor.execute("INSERT INTO ledger_node (level, idx, hash) VALUES (%s, %s, %s)", [level, index, value])
            prev = leaf
        cursor.execute(
            "UPDATE ledger_head SET size = %s, last_hash = %s, frontier = %s WHERE id = 1",
            [len(rows), prev, b"".join(frontier)],
        )
