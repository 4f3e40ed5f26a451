"""``entry_append``: the only way into the ledger.

Everything that needs no database is checked first (``entry_draft``: accounts, amounts,
balance, body) and the entry is canonicalised around the three values only the chain head
knows (previous hash, sequence number, time). Then, in one transaction: check that the
participants exist, lock the head row, splice those values in, hash the leaf, write the
entry with its postings, participant links and the Merkle nodes its leaf completes, and move
the head forward. Concurrent appenders queue on that one row, so the chain can neither fork nor
leave a gap.

On PostgreSQL the locked part is one call of ``fairshare_ledger_append`` (the newest
ledger/sql/append_v*.sql, installed by the migrations): the head stays locked until COMMIT,
so each round trip while it is held is paid by every writer of the deployment. That COMMIT
does not wait for the WAL flush (``synchronous_commit`` off for the append's transaction
only), so the lock is not held across an fsync; ``entry_append`` returns after a synchronous
commit outside the lock has flushed the WAL past the entry, so a returned entry is durable.
Under autocommit the call, its COMMIT and that flush are sent as one round trip; inside the
caller's transaction the flush follows the caller's COMMIT. A crash before the flush loses
the entry and everything chained after it (the WAL is replayed in order), never one entry
out of the middle; if the connection fails between the COMMIT and the flush, the entry may
exist although the call raised, and a retry with the same idempotency key returns it.
Elsewhere (SQLite) the same steps run here in Python.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from uuid import UUID

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from consortium.access import Principal
from consortium.models import Consortium, Participant
from core.errors import Conflict, InvalidInput
from ledger import canonical, merkle
from ledger.columns import ENTRY_COLUMNS, NODE_COLUMNS, PARTICIPANT_COLUMNS, POSTING_COLUMNS
from ledger.models import LedgerEntry, LedgerEntryParticipant
from ledger.services.draft import EntryDraft, entry_draft


class IdempotencyKeyReused(Conflict):
    """The idempotency key is already on an entry that records something else."""

    def __init__(self, message: str, *, field: str | None = "idempotency_key"):
        super().__init__(message, field=field)


class LedgerCorrupt(RuntimeError):
    """The stored ledger contradicts itself; appending would make it worse. Run verify_ledger."""


def entry_append(
    *,
    consortium: Consortium,
    kind: str,
    body: dict,
    postings: Iterable | None = None,
    actor: Principal | str,
    reference_type: str,
    reference_id: str,
    participants: Iterable[Participant | str] = (),
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Append one entry and return it; with a known ``idempotency_key``, return that entry.

    ``postings`` (transactions only) are ``(account, Decimal amount, currency)`` triples or
    dicts with those keys; they must sum to zero per currency. ``participants`` (instances
    or slugs) are who the entry concerns; participants named by accounts are added.
    Raises InvalidInput (``core.errors``) on bad input, naming the field or fields, and
    IdempotencyKeyReused (a Conflict) when the key is taken by a different entry.
    """
    draft = entry_draft(
        consortium=consortium, kind=kind, body=body, postings=postings, actor=actor,
        reference_type=reference_type, reference_id=reference_id, participants=participants,
        idempotency_key=idempotency_key,
    )
    if connection.vendor == "postgresql":
        return _append_in_postgresql(draft)  # it checks the idempotency key under the lock
    return _append_or_repeat_here(draft)


def _repeat(existing: LedgerEntry, draft: EntryDraft) -> LedgerEntry:
    if canonical.content_of(existing.document) != draft.content():
        raise IdempotencyKeyReused(
            f"Idempotency key {draft.idempotency_key!r} was used for entry {existing.seq}, which records something else."
        )
    return existing


def _appended(draft: EntryDraft, *, seq: int, prev_hash: bytes, time_text: str) -> LedgerEntry:
    """The entry as written, built in memory: the caller needs no extra query to use it."""
    data = draft.canonical_at(seq=seq, prev_hash=prev_hash, time_text=time_text)
    entry = LedgerEntry(
        seq=seq, kind=draft.kind, consortium=draft.consortium, reference_type=draft.reference_type,
        reference_id=draft.reference_id, actor=draft.actor, created_at=canonical.parse_time(time_text),
        idempotency_key=draft.idempotency_key, prev_hash=prev_hash, leaf_hash=merkle.leaf_hash(data), canonical=data,
    )
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


# --- PostgreSQL: one function call ----------------------------------------------------------

_CALL = (
    "fairshare_ledger_append(%s, %s::uuid, %s, %s, %s, %s, %s::bytea, %s::bytea, %s::bytea, %s::bytea, "
    "%s::text[], %s::text[], %s::bigint[], %s::text[])"
)
# Inside the caller's transaction: only the call; the flush follows the caller's COMMIT.
_CALL_IN_TRANSACTION = f"SELECT r_seq, r_time, r_prev, r_leaf, r_existing FROM {_CALL}"
# In autocommit: the append's transaction, its COMMIT and the durability flush, in one round
# trip. The driver returns only the last statement's result, so the function leaves its
# result in a session setting for that statement to read.
_CALL_AND_FLUSH = (
    f"BEGIN; SELECT FROM {_CALL}; COMMIT; "
    "SELECT current_setting('fairshare.ledger_appended'), pg_current_xact_id()"
)
_TRANSACTION_OPEN = (2, 3)  # libpq's PQTRANS_INTRANS and PQTRANS_INERROR, in psycopg2 and psycopg


def _call_params(draft: EntryDraft) -> list:
    head, middle, after_seq, tail = draft.template
    return [
        draft.kind, draft.consortium.pk, draft.reference_type, draft.reference_id, draft.actor,
        draft.idempotency_key, head, middle, after_seq, tail,
        [account for account, _, _ in draft.postings], [currency for _, currency, _ in draft.postings],
        [minor for _, _, minor in draft.postings], list(draft.participants),
    ]


def _append_in_postgresql(draft: EntryDraft) -> LedgerEntry:
    params = _call_params(draft)
    own_transaction = connection.get_autocommit()
    try:
        with connection.cursor() as cursor:
            if own_transaction:
                cursor.execute(_CALL_AND_FLUSH, params)
                seq, existing, time_text, prev_hash, leaf = _appended_setting(cursor.fetchone()[0])
            else:
                cursor.execute(_CALL_IN_TRANSACTION, params)
                seq, time_text, prev_hash, leaf, existing = cursor.fetchone()
    except DatabaseError as exc:
        if own_transaction:
            _end_failed_transaction()
        raise _refusal(exc, draft.consortium.slug) from None
    if not own_transaction:
        # The call will commit with the caller's transaction, without waiting for the WAL
        # flush; the entry is durable only once a synchronous commit has flushed past it.
        transaction.on_commit(_flush_wal)
    if existing:  # a concurrent retry with the same key committed while we waited
        return _repeat(LedgerEntry.objects.get(seq=seq), draft)
    entry = _appended(draft, seq=seq, prev_hash=bytes(prev_hash), time_text=time_text)
    if bytes(entry.leaf_hash) != bytes(leaf):
        raise LedgerCorrupt(f"entry {seq}: the database hashed different bytes than Python built")
    return entry


def _refusal(exc: DatabaseError, consortium: str) -> Exception:
    """What the append function's own errors mean to the caller; any other error as it was."""
    code, message = getattr(exc.__cause__, "pgcode", None), str(exc.__cause__).splitlines()[0]
    if code == "FSL02":  # unknown participant slugs, found before the head was locked
        return InvalidInput(message.replace("{consortium}", consortium), field="participants")
    if code == "FSL03":  # the consortium row is gone
        return InvalidInput(f"Consortium {consortium} no longer exists.", field="consortium")
    if code == "FSL01":
        return LedgerCorrupt(message)
    return exc


# --- several entries in one call --------------------------------------------------------------


def entries_append(entries: Sequence[dict]) -> list[LedgerEntry]:
    """Append several entries, in order, in one transaction, and return them: each as
    ``entry_append`` would (its keyword arguments, one dict per entry; a known idempotency
    key returns that key's entry). Every entry is checked before anything is written. On
    PostgreSQL the whole batch is one call of ``fairshare_ledger_append_many``.
    """
    drafts = [entry_draft(**entry) for entry in entries]
    if not drafts:
        return []
    with transaction.atomic():
        if connection.vendor != "postgresql":
            return [_append_or_repeat_here(draft) for draft in drafts]
        slugs = {draft.consortium.slug for draft in drafts}
        try:
            with connection.cursor() as cursor:
                cursor.execute(_CALL_MANY, [json.dumps([_named_params(draft) for draft in drafts])])
                rows = cursor.fetchall()
        except DatabaseError as exc:
            raise _refusal(exc, slugs.pop() if len(slugs) == 1 else "its consortium") from None
        transaction.on_commit(_flush_wal)  # one flush after COMMIT makes the whole batch durable
    return [_batch_entry(draft, row) for draft, row in zip(drafts, rows, strict=True)]


_CALL_MANY = "SELECT r_seq, r_time, r_prev, r_leaf, r_existing FROM fairshare_ledger_append_many(%s::jsonb)"
_PARAM_NAMES = ("kind", "consortium", "reference_type", "reference_id", "actor", "idempotency_key", "head", "middle",
                "after_seq", "tail", "accounts", "currencies", "amounts", "participants")


def _named_params(draft: EntryDraft) -> dict:
    """``fairshare_ledger_append``'s arguments by name, as JSON: bytes in hex, the uuid as text."""
    named = dict(zip(_PARAM_NAMES, _call_params(draft), strict=True))
    named["consortium"] = str(named["consortium"])
    for name in ("head", "middle", "after_seq", "tail"):
        named[name] = bytes(named[name]).hex()
    return named


def _batch_entry(draft: EntryDraft, row) -> LedgerEntry:
    seq, time_text, prev_hash, leaf, existing = row
    if existing:
        return _repeat(LedgerEntry.objects.get(seq=seq), draft)
    entry = _appended(draft, seq=seq, prev_hash=bytes(prev_hash), time_text=time_text)
    if bytes(entry.leaf_hash) != bytes(leaf):
        raise LedgerCorrupt(f"entry {seq}: the database hashed different bytes than Python built")
    return entry


def _append_or_repeat_here(draft: EntryDraft) -> LedgerEntry:
    if draft.idempotency_key is not None:
        existing = LedgerEntry.objects.filter(idempotency_key=draft.idempotency_key).first()
        if existing is not None:
            return _repeat(existing, draft)
    return _append_here(draft)


def _appended_setting(text: str) -> tuple[int, bool, str | None, bytes | None, bytes | None]:
    """Parse ``fairshare.ledger_appended``: "seq f time prev-hex leaf-hex", or "seq t" for a
    key that an entry already has."""
    seq, existing, *rest = text.split(" ")
    if existing == "t":
        return int(seq), True, None, None, None
    time_text, prev_hex, leaf_hex = rest
    return int(seq), False, time_text, bytes.fromhex(prev_hex), bytes.fromhex(leaf_hex)


def _end_failed_transaction() -> None:
    """After a failure inside ``_CALL_AND_FLUSH``'s explicit BEGIN, roll that transaction back
    (the driver, in autocommit, does not know it is open)."""
    raw = connection.connection
    if raw is None:
        return
    status = raw.get_transaction_status() if hasattr(raw, "get_transaction_status") else raw.info.transaction_status
    if status in _TRANSACTION_OPEN:
        # A connection that broke cannot roll back; the original error is what matters.
        with contextlib.suppress(Exception), raw.cursor() as cursor:
            cursor.execute("ROLLBACK")


def _flush_wal() -> None:
    """Return only when the WAL is on disk past the append's commit record.

    A transaction that takes a transaction id commits with a WAL flush up to its own commit
    record, which lies after the append's; concurrent appenders share these flushes (group
    commit) because no lock is held here.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id()")


# --- elsewhere: the same steps in Python ---------------------------------------------------


def _append_here(draft: EntryDraft) -> LedgerEntry:
    # No foreign key checks these (see ledger/models.py); on PostgreSQL the function does.
    if not Consortium.objects.filter(pk=draft.consortium.pk).exists():
        raise InvalidInput(f"Consortium {draft.consortium.slug} no longer exists.", field="consortium")
    participant_ids = _participant_ids(draft.consortium, draft.participants)
    if missing := [slug for slug in draft.participants if slug not in participant_ids]:
        raise InvalidInput(f"Not participants of {draft.consortium.slug}: {', '.join(missing)}.", field="participants")
    # No savepoint when nested: nothing inside is expected to fail.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        size, last_hash, frontier = _head_lock(cursor)
        if draft.idempotency_key is not None:
            # A concurrent retry may have committed while we waited for the lock.
            existing = LedgerEntry.objects.filter(idempotency_key=draft.idempotency_key).first()
            if existing is not None:
                return _repeat(existing, draft)
        entry = _appended(draft, seq=size, prev_hash=last_hash, time_text=canonical.format_time(timezone.now()))
        new_frontier, nodes = merkle.frontier_append(frontier, size, bytes(entry.leaf_hash))
        consortium_id = LedgerEntry._meta.get_field("consortium").get_db_prep_value(draft.consortium.pk, connection)
        statements = [_insert("ledger_entry", ENTRY_COLUMNS, [(
            size, draft.kind, consortium_id, draft.reference_type, draft.reference_id, draft.actor,
            connection.ops.adapt_datetimefield_value(entry.created_at), draft.idempotency_key, last_hash,
            entry.leaf_hash, entry.canonical,
        )])]
        if draft.postings:
            statements.append(_insert("ledger_posting", POSTING_COLUMNS, [
                (size, line, account, currency, minor) for line, (account, currency, minor) in enumerate(draft.postings)
            ]))
        if draft.participants:
            participant = LedgerEntryParticipant._meta.get_field("participant")
            statements.append(_insert("ledger_entry_participant", PARTICIPANT_COLUMNS, [
                (size, participant.get_db_prep_value(participant_ids[slug], connection)) for slug in draft.participants
            ]))
        statements.append(_insert("ledger_node", NODE_COLUMNS, nodes))
        statements.append((
            "UPDATE ledger_head SET size = %s, last_hash = %s, frontier = %s WHERE id = 1",
            [size + 1, entry.leaf_hash, b"".join(new_frontier)],
        ))
        for sql, params in statements:
            cursor.execute(sql, params)
    return entry


def _participant_ids(consortium: Consortium, slugs: Iterable[str]) -> dict[str, UUID]:
    """slug -> id of the consortium's participants among ``slugs`` (plain SQL: the model's
    default ordering would join the consortium table on every append)."""
    slugs = list(slugs)
    if not slugs:
        return {}
    meta = Participant._meta
    consortium_field = meta.get_field("consortium")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT slug, {meta.pk.column} FROM {meta.db_table} WHERE {consortium_field.column} = %s "
            f"AND slug IN ({', '.join(['%s'] * len(slugs))})",
            [consortium_field.get_db_prep_value(consortium.pk, connection), *slugs],
        )
        return {slug: meta.pk.to_python(pk) for slug, pk in cursor.fetchall()}


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple]) -> tuple[str, list]:
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * len(rows))}",
        [value for values in rows for value in values],
    )


def _head_lock(cursor) -> tuple[int, bytes, list[bytes]]:
    """Lock the head row (creating it on an empty ledger) and read it."""
    for _attempt in range(2):
        if connection.vendor == "sqlite":
            # SQLite ignores FOR UPDATE; writing first takes the database's write lock.
            cursor.execute("UPDATE ledger_head SET size = size WHERE id = 1")
        cursor.execute(
            "SELECT size, last_hash, frontier FROM ledger_head WHERE id = 1"
            + (" FOR UPDATE" if connection.features.has_select_for_update else "")
        )
        row = cursor.fetchone()
        if row is not None:
            size, last_hash, frontier = int(row[0]), bytes(row[1]), bytes(row[2])
            if len(frontier) != 32 * size.bit_count() or len(last_hash) != 32:
                raise LedgerCorrupt(f"the ledger head at size {size} is malformed")
            return size, last_hash, [frontier[i : i + 32] for i in range(0, len(frontier), 32)]
        # First append ever (or after a test flush). Concurrent first appenders queue on the
        # inserted row; only the one whose insert took effect may find entries to worry about.
        cursor.execute(
            "INSERT INTO ledger_head (id, size, last_hash, frontier) VALUES (1, 0, %s, %s) ON CONFLICT (id) DO NOTHING",
            [canonical.GENESIS_PREV, b""],
        )
        if cursor.rowcount == 1 and LedgerEntry.objects.exists():
            raise LedgerCorrupt("the ledger head is missing but entries exist; refusing to start a second chain")
    raise LedgerCorrupt("could not lock the ledger head")
