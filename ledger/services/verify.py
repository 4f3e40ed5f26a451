"""``ledger_verify``: recompute the whole ledger from its rows and name the first thing wrong.

It streams the entries in sequence order, a chunk at a time (with that chunk's postings,
participants and Merkle nodes), so memory stays flat on a ledger of millions. For every
entry it checks: the sequence has no gap; the leaf hash is SHA-256 of the canonical bytes;
those bytes are canonical and say the same seq, the previous entry's hash and the same
columns as the row; a transaction has two or more valid postings that sum to zero per
currency; and the Merkle nodes its leaf completes are stored exactly. Then: the head row,
the number of stored nodes, the triggers, and every checkpoint (its signature by a trusted
key and its root, recomputed at its size), including checkpoints kept outside the database
and handed in with ``held_notes``. Only those catch someone who rewrote every row and
re-signed nothing: the stored checkpoints go with the table, the held ones do not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q

from consortium.models import Participant
from core.errors import InvalidInput
from ledger import canonical, merkle, signing
from ledger.accounts import InvalidAccount, account_parse
from ledger.columns import ENTRY_COLUMNS
from ledger.currencies import UnknownCurrency, amount_text
from ledger.enforcement import trigger_problems
from ledger.models import Checkpoint, EntryKind, LedgerEntry, LedgerEntryParticipant, LedgerHead, LedgerNode, Posting
from ledger.notes import NoteError, checkpoint_body, note_verify


@dataclass
class Problem:
    seq: int | None
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.message}" if self.seq is not None else self.message


@dataclass
class VerificationReport:
    entries: int = 0
    root: bytes = merkle.EMPTY_ROOT
    checkpoints: int = 0
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Failed(Exception):
    def __init__(self, seq: int | None, message: str):
        self.problem = Problem(seq, message)


@dataclass
class _Target:
    """A checkpoint to check when the stream reaches its size."""

    label: str
    tree_size: int
    root: bytes


def ledger_verify(*, held_notes: list[tuple[str, str]] = (), chunk_size: int = 2000) -> VerificationReport:
    """Verify everything; ``held_notes`` are (label, note text) of checkpoints kept elsewhere."""
    if chunk_size < 1:  # a chunk of none would end the walk at once and report entries as removed
        raise InvalidInput(f"The chunk size is at least 1, not {chunk_size}.", field="chunk_size")
    report = VerificationReport()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            # One snapshot for the whole walk, so appends made meanwhile do not look like damage.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            _Walk(report, held_notes, chunk_size).run()
        except _Failed as failure:
            report.problem = failure.problem
    return report


class _Walk:
    def __init__(self, report: VerificationReport, held_notes, chunk_size: int):
        self.report = report
        self.held_notes = list(held_notes)
        self.chunk_size = chunk_size
        self.frontier: list[bytes] = []
        self.prev = canonical.GENESIS_PREV
        self.size = 0
        self.slugs: dict[object, tuple[str, str]] = {}  # participant id -> (consortium id, slug)
        self.postings_seen = self.links_seen = 0

    def run(self) -> None:
        targets = self._targets()
        head = LedgerHead.objects.filter(id=1).values_list("size", "last_hash", "frontier").first()
        last_seq = -1
        while True:
            rows = list(
                LedgerEntry.objects.filter(seq__gt=last_seq).order_by("seq").values_list(*ENTRY_COLUMNS)[: self.chunk_size]
            )
            if not rows:
                break
            postings, participants, nodes = self._chunk_relations(rows[0][0], rows[-1][0])
            for row in rows:
                self._entry(row, postings.get(row[0], []), participants.get(row[0], []), nodes)
                while targets and targets[0].tree_size == self.size:
                    self._check_target(targets.pop(0))
            last_seq = rows[-1][0]
        self.report.entries = self.size
        self.report.root = merkle.frontier_root(self.frontier)
        if targets:
            target = targets[0]
            raise _Failed(
                self.size,
                f"missing: {target.label} covers {target.tree_size} entries but the ledger has only {self.size} "
                "(entries were removed)",
            )
        self._check_head(head)
        expected_nodes = sum(self.size >> level for level in range(self.size.bit_length()))
        if (stored := LedgerNode.objects.count()) != expected_nodes:
            raise _Failed(None, f"ledger_node holds {stored} rows; a tree of {self.size} entries has {expected_nodes}")
        # Rows the walk never saw belong to no entry (the chunks fetch by entry).
        for model, seen in ((Posting, self.postings_seen), (LedgerEntryParticipant, self.links_seen)):
            if (stored := model.objects.count()) != seen:
                raise _Failed(None, f"{model._meta.db_table} holds {stored - seen} row(s) that belong to no entry")
        for problem in trigger_problems(connection):
            raise _Failed(None, problem)

    # --- checkpoints ----------------------------------------------------------------------

    def _targets(self) -> list[_Target]:
        keys = signing.trusted_public_keys()
        targets = []
        for checkpoint in Checkpoint.objects.order_by("tree_size"):
            label = f"checkpoint {checkpoint.pk} (size {checkpoint.tree_size})"
            if bytes(checkpoint.public_key) not in keys:
                raise _Failed(None, f"{label} is signed by a key this deployment does not trust")
            try:
                signed = note_verify(checkpoint.note, public_keys=keys)
            except (NoteError, ValueError) as exc:
                raise _Failed(None, f"{label}: {exc}") from None
            if signed.body != checkpoint_body(
                origin=checkpoint.origin, tree_size=checkpoint.tree_size, root=bytes(checkpoint.root),
                time=checkpoint.created_at,
            ):
                raise _Failed(None, f"{label}: its columns differ from what was signed")
            targets.append(_Target(label, checkpoint.tree_size, bytes(checkpoint.root)))
        for label, note in self.held_notes:
            try:
                signed = note_verify(note, public_keys=keys)
            except NoteError as exc:
                raise _Failed(None, f"held checkpoint {label}: {exc}") from None
            targets.append(_Target(f"held checkpoint {label} (size {signed.tree_size})", signed.tree_size, signed.root))
        self.report.checkpoints = len(targets)
        targets.sort(key=lambda target: target.tree_size)
        while targets and targets[0].tree_size == 0:
            target = targets.pop(0)
            if target.root != merkle.EMPTY_ROOT:
                raise _Failed(None, f"{target.label}: the empty tree's root is wrong")
        return targets

    def _check_target(self, target: _Target) -> None:
        root = merkle.frontier_root(self.frontier)
        if root != target.root:
            raise _Failed(
                self.size - 1,
                f"the Merkle root of the first {self.size} entries is {root.hex()}, but {target.label} signed "
                f"{target.root.hex()}: entries up to {self.size - 1} were rewritten",
            )

    # --- entries --------------------------------------------------------------------------

    def _chunk_relations(self, first: int, last: int):
        postings: dict[int, list[tuple]] = defaultdict(list)
        for entry_id, line, account, currency, minor in (
            Posting.objects.filter(entry_id__gte=first, entry_id__lte=last)
            .order_by("entry_id", "line")
            .values_list("entry_id", "line", "account", "currency", "amount_minor")
        ):
            postings[entry_id].append((line, account, currency, minor))
        participants: dict[int, list[int]] = defaultdict(list)
        for entry_id, participant_id in LedgerEntryParticipant.objects.filter(
            entry_id__gte=first, entry_id__lte=last
        ).values_list("entry_id", "participant_id"):
            participants[entry_id].append(participant_id)
        self._load_slugs({pid for ids in participants.values() for pid in ids})
        return postings, participants, self._chunk_nodes(first, last)

    def _load_slugs(self, ids: set[int]) -> None:
        if missing := ids - set(self.slugs):
            for pid, consortium_id, slug in Participant.objects.filter(pk__in=missing).values_list(
                "pk", "consortium_id", "slug"
            ):
                self.slugs[pid] = (str(consortium_id), slug)

    def _chunk_nodes(self, first: int, last: int) -> dict[merkle.Node, bytes]:
        """The stored nodes that leaves first..last complete (node (l, i) ends at leaf (i+1)*2^l - 1)."""
        condition = Q()
        for level in range((last + 1).bit_length()):
            low, high = -(-(first + 1) // (1 << level)) - 1, (last + 1) // (1 << level) - 1
            if low <= high:
                condition |= Q(level=level, index__gte=low, index__lte=high)
        return {
            (level, index): bytes(value)
            for level, index, value in LedgerNode.objects.filter(condition).values_list("level", "index", "hash")
        }

    def _entry(self, row, postings, participant_ids, nodes) -> None:
        (seq, kind, consortium_id, reference_type, reference_id, actor, created_at,
         idempotency_key, prev_hash, leaf_hash, data) = row
        data = bytes(data)
        if seq != self.size:
            raise _Failed(self.size, f"missing: the next stored entry is {seq} (deleted or renumbered)")
        if bytes(leaf_hash) != merkle.leaf_hash(data):
            raise _Failed(seq, "altered: the stored leaf hash is not the hash of the entry's canonical bytes")
        try:
            document = canonical.document_parse_strict(data)
        except ValueError:  # includes InvalidBody for floats
            raise _Failed(seq, "altered: the entry bytes are not JSON without floats") from None
        if not isinstance(document, dict) or not canonical.is_canonical(data, document):
            raise _Failed(seq, "altered: the entry bytes are not in RFC 8785 canonical form")
        if document.get("seq") != seq:
            raise _Failed(seq, f"moved: the entry's bytes say seq {document.get('seq')!r} (reordered or inserted)")
        if document.get("prev") != self.prev.hex() or bytes(prev_hash) != self.prev:
            raise _Failed(
                seq,
                f"chain broken: it does not link to entry {seq - 1} (whose hash is {self.prev.hex()}); "
                f"one of the two was rewritten",
            )
        slugs = []
        for pid in participant_ids:
            owner, slug = self.slugs.get(pid, (None, f"#{pid}"))
            if owner != str(consortium_id):
                raise _Failed(seq, f"altered: participant link {slug} is not a participant of the entry's consortium")
            slugs.append(slug)
        try:
            columns = canonical.entry_document(
                seq=seq, prev_hash=bytes(prev_hash), time=created_at, kind=kind, consortium_id=str(consortium_id),
                reference_type=reference_type, reference_id=reference_id, participants=slugs, actor=actor,
                idempotency_key=idempotency_key, body=document.get("body"),
                postings=[(account, amount_text(minor, currency), currency) for _, account, currency, minor in postings],
            )
        except (UnknownCurrency, ValueError) as exc:
            raise _Failed(seq, f"altered: unreadable posting column ({exc})") from None
        if len(slugs) != len(set(slugs)) or [line for line, *_ in postings] != list(range(len(postings))):
            raise _Failed(seq, "altered: duplicate participant links or posting lines")
        if differing := sorted(name for name in document.keys() | columns.keys() if document.get(name) != columns.get(name)):
            raise _Failed(seq, f"altered: the row's {', '.join(differing)} differ(s) from the entry's signed bytes")
        self._entry_rules(seq, document)
        self.frontier, completed = merkle.frontier_append(self.frontier, seq, merkle.leaf_hash(data))
        for level, index, value in completed:
            if nodes.get((level, index)) != value:
                state = "missing" if (level, index) not in nodes else "wrong"
                raise _Failed(seq, f"Merkle node ({level}, {index}) completed by this entry is {state}")
        self.prev, self.size = merkle.leaf_hash(data), seq + 1
        self.postings_seen += len(postings)
        self.links_seen += len(participant_ids)

    def _entry_rules(self, seq: int, document: dict) -> None:
        kind, postings = document["kind"], document["postings"]
        if not isinstance(document["body"], dict):
            raise _Failed(seq, "invalid: the body is not a JSON object")
        if kind == EntryKind.RECORD:
            if postings:
                raise _Failed(seq, "invalid: a record carries postings")
            return
        if kind != EntryKind.TRANSACTION:
            raise _Failed(seq, f"invalid: unknown kind {kind!r}")
        if len(postings) < 2:
            raise _Failed(seq, "unbalanced: a transaction with fewer than two postings")
        totals: dict[str, int] = defaultdict(int)
        for posting in postings:
            try:
                account_parse(posting["account"])
            except InvalidAccount as exc:
                raise _Failed(seq, f"invalid: {exc}") from None
            # Postings were checked against the columns above, which hold minor units.
            totals[posting["currency"]] += int(posting["amount"].replace(".", ""))
        if off := {currency: total for currency, total in totals.items() if total}:
            raise _Failed(seq, f"unbalanced: postings do not sum to zero in {', '.join(sorted(off))}")

    def _check_head(self, head) -> None:
        if head is None:
            if self.size:
                raise _Failed(None, f"the ledger head row is missing although {self.size} entries exist")
            return
        size, last_hash, frontier = int(head[0]), bytes(head[1]), bytes(head[2])
        if size != self.size:
            raise _Failed(
                min(size, self.size),
                f"the head says the ledger has {size} entries but {self.size} are stored "
                + ("(entries were removed)" if size > self.size else "(entries were added around entry_append)"),
            )
        if last_hash != self.prev or frontier != b"".join(self.frontier):
            raise _Failed(None, "the ledger head's hashes differ from the recomputed chain and tree")
