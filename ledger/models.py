"""Ledger state: entries, their postings and participants, Merkle nodes, checkpoints, the head.

The foreign keys have no database constraint (``db_constraint=False``): their checks would
run at COMMIT, while the append holds the chain head locked. What they protected is kept by
the append function and by delete guards on the referenced tables (migration 0004).

Everything except the head is append-only, in three layers: these models refuse to save an
existing row or delete one (and their querysets refuse ``update()`` and ``delete()``),
database triggers refuse UPDATE, DELETE and TRUNCATE (``ledger/enforcement.py``), and
``verify_ledger`` recomputes every hash. Rows are written only by ``entry_append`` and
``checkpoint_create`` in ``ledger/services``.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property

from django.db import models
from django.db.models import Q

from consortium.models import Consortium, Participant
from ledger import canonical
from ledger.currencies import from_minor
from ledger.notes import checkpoint_note

# Sequence numbers and tree sizes are 64-bit columns: a larger number from a URL or a query
# parameter is refused (or found nowhere) before it can overflow in the database.
MAX_LEDGER_SIZE = 2**63 - 1


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove a ledger row: corrections are new entries."""


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model._meta.label} rows are never updated; append a correcting entry instead.")

    def _update(self, values):
        raise AppendOnlyError(f"{self.model._meta.label} rows are never updated.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError(f"{self.model._meta.label} rows are never updated.")

    def delete(self):
        raise AppendOnlyError(f"{self.model._meta.label} rows are never deleted.")

    delete.alters_data = True
    delete.queryset_only = True


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{self._meta.label} rows are never changed once written.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.label} rows are never deleted.")


class EntryKind(models.TextChoices):
    TRANSACTION = "transaction", "Journal transaction"
    RECORD = "record", "Record"


class ReferenceType(models.TextChoices):
    """What an entry concerns; the id is that object's id, as a string."""

    REVENUE_POOL = "revenue_pool", "Revenue pool"
    STATEMENT = "statement", "Statement"
    VALUATION_RUN = "valuation_run", "Valuation run"
    DISPUTE = "dispute", "Dispute"
    POLICY = "policy", "Allocation policy"


class LedgerEntry(AppendOnlyModel):
    """One leaf of the deployment's Merkle tree; ``seq`` is its leaf index, from 0, gapless."""

    seq = models.BigIntegerField(primary_key=True)
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    consortium = models.ForeignKey(
        Consortium, on_delete=models.PROTECT, related_name="ledger_entries", db_index=False, db_constraint=False
    )
    reference_type = models.CharField(max_length=32, choices=ReferenceType.choices)
    reference_id = models.CharField(max_length=64)
    participants = models.ManyToManyField(
        Participant, through="LedgerEntryParticipant", related_name="ledger_entries", blank=True
    )
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    prev_hash = models.BinaryField(max_length=32)
    leaf_hash = models.BinaryField(max_length=32)
    canonical = models.BinaryField(help_text="The RFC 8785 bytes that are hashed; the columns are a copy.")

    class Meta:
        db_table = "ledger_entry"
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"
        indexes = [
            models.Index(fields=["consortium", "seq"], name="ledger_entry_consortium_seq"),
            # Newest-first filters of the ledger page (migration 0006 says why and what they cost).
            models.Index(fields=["consortium", "kind", "seq"], name="ledger_entry_kind_seq"),
            models.Index(fields=["consortium", "reference_type", "reference_id", "seq"], name="ledger_entry_reference_seq"),
        ]
        constraints = [
            # Partial: most entries carry no key, and every index entry costs each append.
            models.UniqueConstraint(
                fields=["idempotency_key"], condition=Q(idempotency_key__isnull=False), name="ledger_entry_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return f"ledger entry {self.seq} ({self.kind})"

    @cached_property
    def document(self) -> dict:
        return canonical.document_from_bytes(bytes(self.canonical))

    @property
    def body(self) -> dict:
        return self.document["body"]

    @property
    def posting_lines(self) -> list[dict]:
        """The postings as signed: ``{"account", "amount" (Decimal), "currency"}``."""
        return [
            {"account": p["account"], "amount": Decimal(p["amount"]), "currency": p["currency"]}
            for p in self.document["postings"]
        ]


class Posting(AppendOnlyModel):
    """One line of a journal transaction; amounts are integers in the currency's minor unit."""

    pk = models.CompositePrimaryKey("entry", "line")
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="postings", db_index=False, db_constraint=False
    )
    line = models.PositiveSmallIntegerField()
    account = models.CharField(max_length=100, db_index=True)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField()

    class Meta:
        db_table = "ledger_posting"
        ordering = ["entry", "line"]

    def __str__(self) -> str:
        return f"{self.account} {self.amount} {self.currency}"

    @property
    def amount(self) -> Decimal:
        return from_minor(self.amount_minor, self.currency)


class LedgerEntryParticipant(AppendOnlyModel):
    """Which participants an entry concerns: what a participant user may see."""

    pk = models.CompositePrimaryKey("entry", "participant")
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    participant = models.ForeignKey(Participant, on_delete=models.PROTECT, related_name="+", db_constraint=False)

    class Meta:
        db_table = "ledger_entry_participant"


class LedgerNode(AppendOnlyModel):
    """The hash of a perfect subtree: leaves [index << level, (index + 1) << level).

    Each append stores the nodes its leaf completes (about two on average), so any proof or
    root needs only O(log n) of these rows.
    """

    pk = models.CompositePrimaryKey("level", "index")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField(db_column="idx")
    hash = models.BinaryField(max_length=32)

    class Meta:
        db_table = "ledger_node"

    def __str__(self) -> str:
        return f"node ({self.level}, {self.index})"


class Checkpoint(AppendOnlyModel):
    """A signed tree head: the ledger had ``tree_size`` entries with Merkle root ``root``."""

    tree_size = models.BigIntegerField(unique=True)
    root = models.BinaryField(max_length=32)
    created_at = models.DateTimeField()
    origin = models.CharField(max_length=200)
    key_id = models.CharField(max_length=8, help_text="Hex of the signed-note key hash (4 bytes).")
    public_key = models.BinaryField(max_length=32)
    signature = models.BinaryField(max_length=64)

    class Meta:
        db_table = "ledger_checkpoint"
        ordering = ["tree_size"]

    def __str__(self) -> str:
        return f"checkpoint at size {self.tree_size}"

    @property
    def note(self) -> str:
        return checkpoint_note(
            origin=self.origin,
            tree_size=self.tree_size,
            root=bytes(self.root),
            time=self.created_at,
            key_hash=bytes.fromhex(self.key_id),
            signature=bytes(self.signature),
        )


class _HeadQuerySet(models.QuerySet):
    def delete(self):
        raise AppendOnlyError("The ledger head is never deleted.")

    delete.alters_data = True
    delete.queryset_only = True


class LedgerHead(models.Model):
    """The single row every append locks: tree size, last leaf hash and the compact range.

    The only ledger row that changes; a trigger lets it move forward only, and
    ``verify_ledger`` recomputes it.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    size = models.BigIntegerField(default=0)
    last_hash = models.BinaryField(max_length=32, default=canonical.GENESIS_PREV)
    frontier = models.BinaryField(default=b"", help_text="Hashes of the perfect subtrees that make up the tree.")

    objects = _HeadQuerySet.as_manager()

    class Meta:
        db_table = "ledger_head"

    def __str__(self) -> str:
        return f"ledger head at size {self.size}"

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("The ledger head is never deleted.")
