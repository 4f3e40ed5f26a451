"""Ledger services: the only code that writes ledger rows, and the proofs and checks on them.

``entry_append`` and ``entries_append`` (append.py), ``checkpoint_create`` (checkpoints.py), proofs and roots
(proofs.py), ``ledger_verify`` (verify.py) and ``ledger_export`` (export.py).

Refusals are ``core.errors`` classes: InvalidInput (``ProofUnavailable`` is one) and
Conflict (``IdempotencyKeyReused``). ``LedgerCorrupt`` is a RuntimeError: a stored ledger
that contradicts itself is the server's fault, not the caller's.
"""

from ledger.services.append import IdempotencyKeyReused, LedgerCorrupt, entries_append, entry_append
from ledger.services.checkpoints import checkpoint_create
from ledger.services.proofs import (
    ProofUnavailable,
    consistency_get,
    inclusion_proof_get,
    ledger_size,
    tree_root,
)

__all__ = [
    "IdempotencyKeyReused",
    "LedgerCorrupt",
    "ProofUnavailable",
    "checkpoint_create",
    "consistency_get",
    "entries_append",
    "entry_append",
    "inclusion_proof_get",
    "ledger_size",
    "tree_root",
]
