"""The columns each ledger INSERT writes, in order: one list for every writer and reader.

``ledger/services/append.py`` builds its INSERTs (the Python path, used on SQLite) from these
tuples, ``ledger/services/verify.py`` reads the entry columns in this order, and the
PostgreSQL function in the newest ``ledger/sql/append_v*.sql`` writes the same lists.
tests/ledger/test_append.py checks them against the models and against that SQL file.
No Django imports: this module is data.
"""

ENTRY_COLUMNS = (
    "seq", "kind", "consortium_id", "reference_type", "reference_id", "actor", "created_at",
    "idempotency_key", "prev_hash", "leaf_hash", "canonical",
)
POSTING_COLUMNS = ("entry_id", "line", "account", "currency", "amount_minor")
PARTICIPANT_COLUMNS = ("entry_id", "participant_id")
NODE_COLUMNS = ("level", "idx", "hash")
