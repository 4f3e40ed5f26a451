"""Grow a benchmark ledger fast: computed rows loaded with COPY, in batches.

Rows are exactly what ``entry_append`` would write (same canonical bytes, chain, Merkle
nodes and head), so proofs and ``verify_ledger`` work on them; COPY only INSERTs, which the
append-only triggers allow. Entries are canonicalised with the standard library's json,
which gives RFC 8785 bytes for these ASCII-only, float-free documents (checked against
``rfc8785`` on the first entries of every call).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid

import rfc8785

from ledger import canonical, merkle

BATCH = 50_000


def _canonical(document: dict) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()  # COPY text format: the backslash itself is escaped


def ledger_extend(connection, *, target: int, consortium_id: uuid.UUID, participant: tuple[uuid.UUID, str],
                  transactions: bool) -> None:
    """Append computed entries until the ledger has ``target`` entries.

    ``connection`` is a psycopg2 connection. With ``transactions`` every entry is a balanced
    two-posting transaction concerning ``participant`` (like the append benchmark's),
    otherwise a record without postings (cheaper to load, the same for proofs).
    """
    participant_id, slug = participant
    cursor = connection.cursor()
    # A fresh ledger has no head row until its first append; start it as the append would.
    cursor.execute(
        "INSERT INTO ledger_head (id, size, last_hash, frontier) VALUES (1, 0, %s, %s) ON CONFLICT (id) DO NOTHING",
        [canonical.GENESIS_PREV, b""],
    )
    cursor.execute("SELECT size, last_hash, frontier FROM ledger_head WHERE id = 1")
    size, last_hash, frontier_bytes = cursor.fetchone()
    last_hash, frontier_bytes = bytes(last_hash), bytes(frontier_bytes)
    frontier = [frontier_bytes[i : i + 32] for i in range(0, len(frontier_bytes), 32)]
    started = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    checked = 0
    while size < target:
        entries, postings, links, nodes = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
        for seq in range(size, min(target, size + BATCH)):
            time = started + dt.timedelta(microseconds=seq)
            amount = f"{seq % 9973 + 1}.00"
            document = canonical.entry_document(
                seq=seq, prev_hash=last_hash, time=time, kind="transaction" if transactions else "record",
                consortium_id=str(consortium_id), reference_type="statement", reference_id=f"bench-{seq // 1000}",
                participants=[slug] if transactions else [], actor="system:benchmark", idempotency_key=None,
                body={"memo": "benchmark", "n": seq},
                postings=[("revenue_pool", f"-{amount}", "EUR"), (f"participant_payable:{slug}", amount, "EUR")]
                if transactions else [],
            )
            data = _canonical(document)
            if checked < 3:
                assert data == rfc8785.dumps(document), "stdlib JSON drifted from RFC 8785"
                checked += 1
            leaf = hashlib.sha256(b"\x00" + data).digest()
            entries.write(
                f"{seq}\t{document['kind']}\t{consortium_id}\tstatement\t{document['reference']['id']}\t"
                f"system:benchmark\t{time.isoformat()}\t\\N\t{_bytea(last_hash)}\t{_bytea(leaf)}\t{_bytea(data)}\n"
            )
            if transactions:
                minor = int(amount.replace(".", ""))
                postings.write(f"{seq}\t0\trevenue_pool\tEUR\t{-minor}\n{seq}\t1\tparticipant_payable:{slug}\tEUR\t{minor}\n")
                links.write(f"{seq}\t{participant_id}\n")
            frontier, completed = merkle.frontier_append(frontier, seq, leaf)
            for level, index, value in completed:
                nodes.write(f"{level}\t{index}\t{_bytea(value)}\n")
            last_hash = leaf
        size = min(target, size + BATCH)
        for table, columns, buffer in (
            ("ledger_entry", "seq, kind, consortium_id, reference_type, reference_id, actor, created_at, "
                             "idempotency_key, prev_hash, leaf_hash, canonical", entries),
            ("ledger_posting", "entry_id, line, account, currency, amount_minor", postings),
            ("ledger_entry_participant", "entry_id, participant_id", links),
            ("ledger_node", "level, idx, hash", nodes),
        ):
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
        cursor.execute(
            "UPDATE ledger_head SET size = %s, last_hash = %s, frontier = %s WHERE id = 1",
            [size, last_hash, b"".join(frontier)],
        )
        connection.commit()  # per batch
