"""``checkpoint_create``: sign the current tree head.

Made after every issuing event (the caller, e.g. statement issuing, calls it once its
entries are appended) and on demand (``manage.py ledger_checkpoint``). There is at most one
checkpoint per tree size: asking again before anything new was appended returns the
existing one.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import InvalidInput
from ledger import signing
from ledger.models import Checkpoint
from ledger.notes import checkpoint_body
from ledger.services.proofs import ledger_size, tree_root


def checkpoint_create() -> Checkpoint:
    """A signed checkpoint of the ledger as this transaction sees it."""
    size = ledger_size()
    if size == 0:
        raise InvalidInput("The ledger is empty: there is nothing to checkpoint.")
    existing = Checkpoint.objects.filter(tree_size=size).first()
    if existing is not None:
        return existing
    root = tree_root(size=size)
    # Both databases keep the microseconds, so the note can be rebuilt from the row exactly.
    now = timezone.now()
    origin = signing.ledger_origin()
    body = checkpoint_body(origin=origin, tree_size=size, root=root, time=now)
    key_hash, signature = signing.sign(body.encode())
    checkpoint = Checkpoint(
        tree_size=size, root=root, created_at=now, origin=origin, key_id=key_hash.hex(),
        public_key=signing.public_key_bytes(), signature=signature,
    )
    try:
        with transaction.atomic():
            checkpoint.save()
    except IntegrityError:
        # Another process signed the same size a moment ago; theirs is as good as ours.
        return Checkpoint.objects.get(tree_size=size)
    return checkpoint
