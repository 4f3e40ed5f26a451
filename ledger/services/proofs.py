"""Roots and proofs served from the stored Merkle nodes, with O(log n) rows read.

A proof names O(log n) leaf ranges (``ledger.merkle``); each splits into perfect subtrees
whose hashes ``ledger_node`` holds, so every root or proof here costs one query that reads
at most a few dozen rows, whatever the size of the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from core.errors import InvalidInput, inputs_of
from ledger import merkle
from ledger.models import LedgerHead
from ledger.services.append import LedgerCorrupt


class ProofUnavailable(InvalidInput):
    """The sizes asked for do not exist (yet) in this ledger, or are no tree or entry at all."""


def ledger_size() -> int:
    """How many entries the ledger has (as this transaction sees it)."""
    size = LedgerHead.objects.filter(id=1).values_list("size", flat=True).first()
    return int(size or 0)


def node_hashes(nodes: Iterable[merkle.Node], *, tree_size: int | None = None) -> dict[merkle.Node, bytes]:
    """The stored hashes of ``nodes`` (perfect subtrees), in one query.

    A node that is not stored means the tree is smaller than asked (ProofUnavailable, when
    ``tree_size`` says which size was asked for) or damaged (LedgerCorrupt).
    """
    wanted = sorted(set(nodes))
    if not wanted:
        return {}
    # Plain SQL: proofs are served on every statement download, and the ORM's OR-of-ANDs
    # cost more to build than the index lookups cost to run.
    rows = ", ".join(["(%s, %s)"] * len(wanted))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT level, idx, hash FROM ledger_node WHERE (level, idx) IN ({rows})",
            [value for node in wanted for value in node],
        )
        found = {(level, index): bytes(value) for level, index, value in cursor.fetchall()}
    if len(found) < len(wanted):
        current = ledger_size()
        if tree_size is not None and tree_size > current:
            raise ProofUnavailable(f"the ledger has {current} entries, not {tree_size}")
        missing = [node for node in wanted if node not in found]
        raise LedgerCorrupt(f"the ledger is missing Merkle node(s) {missing[:3]}; run verify_ledger")
    return found


def tree_root(*, size: int) -> bytes:
    """The Merkle root of the first ``size`` entries."""
    if size < 0:
        raise ProofUnavailable("a tree size is not negative", field="size")
    if size == 0:
        return merkle.EMPTY_ROOT
    ranges = [(0, size)]
    with inputs_of("size"):
        hashes = node_hashes(merkle.proof_nodes(ranges), tree_size=size)
    return merkle.proof_from_nodes(ranges, hashes)[0]


def inclusion_proof_get(*, seq: int, tree_size: int) -> list[bytes]:
    """The audit path of entry ``seq`` in the tree of the first ``tree_size`` entries."""
    if not 0 <= seq < tree_size:
        raise ProofUnavailable(f"entry {seq} is not in a tree of {tree_size} entries", field="seq")
    ranges = merkle.inclusion_ranges(seq, tree_size)
    # The path may not touch the tree's last leaf; asking for it too proves the tree exists.
    with inputs_of("tree_size"):
        hashes = node_hashes({*merkle.proof_nodes(ranges), (0, tree_size - 1)}, tree_size=tree_size)
    return merkle.proof_from_nodes(ranges, hashes)


def consistency_get(*, old_size: int, new_size: int) -> tuple[list[bytes], bytes, bytes]:
    """(proof, old root, new root) showing the first ``old_size`` entries are a prefix of the
    first ``new_size``; one query for all three."""
    if not 0 < old_size <= new_size:
        raise ProofUnavailable("a consistency proof needs 0 < old size <= new size", field="old_size")
    proof_ranges = merkle.consistency_ranges(old_size, new_size)
    root_ranges = [(0, old_size), (0, new_size)]
    with inputs_of("new_size"):
        hashes = node_hashes(merkle.proof_nodes([*proof_ranges, *root_ranges]), tree_size=new_size)
    old_root, new_root = merkle.proof_from_nodes(root_ranges, hashes)
    return merkle.proof_from_nodes(proof_ranges, hashes), old_root, new_root


