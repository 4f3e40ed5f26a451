"""Ledger services: the only code that writes ledger rows, and the proofs and checks on them.

``entry_append`` (append.py), ``checkpoint_create`` (checkpoints.py), proofs and roots
(proofs.py), ``ledger_verify`` (verify.py) and ``ledger_export`` (export.py).
"""

from ledger.services.append import IdempotencyKeyReused, LedgerCorrupt, entry_append
from ledger.services.checkpoints import checkpoint_create, checkpoint_latest
from ledger.services.proofs import (
    ProofUnavailable,
    consistency_get,
    inclusion_proof_get,
    ledger_size,
    node_hashes,
    tree_root,
)

__all__ = [
    "IdempotencyKeyReused",
    "LedgerCorrupt",
    "ProofUnavailable",
    "checkpoint_create",
    "checkpoint_latest",
    "consistency_get",
    "entry_append",
    "inclusion_proof_get",
    "ledger_size",
    "node_hashes",
    "tree_root",
]
