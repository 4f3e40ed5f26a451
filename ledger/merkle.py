"""RFC 9162 (section 2.1) Merkle trees over SHA-256: hashes, proofs and their verifiers.

Pure: bytes in and out, no Django, no I/O. The contract other code and outside tools rely on:
``leaf_hash``, ``node_hash``, ``root``, ``inclusion_proof``, ``consistency_proof``,
``verify_inclusion`` and ``verify_consistency``; the verifiers raise :class:`ProofError` on
any failure and return None on success.

Proofs are built in two steps so that a database can serve them with O(log n) reads: the
``*_ranges`` functions name the leaf ranges whose hashes a proof holds, every range splits
into at most O(log n) *perfect* subtrees (``range_nodes``), and ``proof_from_nodes`` folds the
hashes of those perfect subtrees, however they were fetched, into the proof. A perfect
subtree is addressed as ``(level, index)``: it covers leaves ``[index << level,
(index + 1) << level)``. ``frontier_append`` keeps the compact range of a growing tree (the
perfect subtrees that make up its leaves, left to right) and says which perfect subtrees
each new leaf completes, so an append-only store can keep every one of them.

Subtree proofs (draft-ietf-plants-merkle-tree-certs, as in transparency-dev/merkle) are here
too, because the reference probes include them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index) of a perfect subtree
Range = tuple[int, int]  # leaves [start, end)


class ProofError(ValueError):
    """A proof, or the claim it is checked against, does not hold."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


# --- growing a tree -----------------------------------------------------------------------


def frontier_append(frontier: Sequence[bytes], size: int, leaf: bytes) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Add leaf number ``size`` to a tree whose compact range is ``frontier``.

    Returns the new frontier and the ``(level, index, hash)`` of every perfect subtree the
    leaf completes, the leaf itself first. The frontier holds one hash per set bit of the
    tree size, largest subtree first.
    """
    if len(frontier) != size.bit_count():
        raise ValueError(f"a frontier for {size} leaves has {size.bit_count()} hashes, not {len(frontier)}")
    stack = list(frontier)
    completed = [(0, size, leaf)]
    level, index, current = 0, size, leaf
    while index & 1:  # a right child: its left sibling is the frontier's last subtree
        current = node_hash(stack.pop(), current)
        level, index = level + 1, index >> 1
        completed.append((level, index, current))
    stack.append(current)
    return stack, completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root of the tree whose compact range is ``frontier``."""
    if not frontier:
        return EMPTY_ROOT
    result = frontier[-1]
    for left in reversed(frontier[:-1]):
        result = node_hash(left, result)
    return result


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 9162 for the given leaf hashes; the empty tree's root is SHA-256("")."""
    frontier: list[bytes] = []
    for size, leaf in enumerate(leaf_hashes):
        frontier, _ = frontier_append(frontier, size, leaf)
    return frontier_root(frontier)


# --- which hashes a proof holds -------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees that make up ``[start, end)``, left to right.

    Only ranges that are subtrees in RFC 9162's sense (``start`` a multiple of the smallest
    power of two >= ``end - start``, or ``end`` the tree's right edge) occur in proofs; their
    MTH is the right fold of these nodes.
    """
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    nodes: list[Node] = []
    while start < end:
        # The largest aligned perfect subtree that starts at ``start`` and fits.
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << level) > end - start:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[size]) of RFC 9162 2.1.3.1 as leaf ranges, from the leaf upwards."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """PROOF(old_size, D[new_size]) of RFC 9162 2.1.4.1 as leaf ranges, from the bottom up."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    ranges: list[Range] = []
    m, start, end, complete = old_size, 0, new_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m, start, complete = m - k, start + k, False
    if not complete:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def subtree_consistency_ranges(start: int, end: int, size: int) -> list[Range]:
    """SUBTREE_PROOF(start, end, D[size]) of the Merkle Tree Certificates draft, bottom up."""
    if not (_subtree_is_valid(start, end) and start < end <= size):
        raise ValueError(f"[{start}, {end}) is not a subtree of a tree of size {size}")
    ranges: list[Range] = []
    base, n, known = 0, size, True
    while not (start == 0 and end == n):
        k = _split(n)
        if end <= k:
            ranges.append((base + k, base + n))
            n = k
        elif k <= start:
            ranges.append((base, base + k))
            start, end, base, n = start - k, end - k, base + k, n - k
        else:  # start == 0 < k < end
            ranges.append((base, base + k))
            start, end, base, n, known = 0, end - k, base + k, n - k, False
    if not known:
        ranges.append((base, base + n))
    ranges.reverse()
    return ranges


def proof_nodes(ranges: Iterable[Range]) -> set[Node]:
    """Every perfect subtree whose hash is needed to build the proof for ``ranges``."""
    return {node for start, end in ranges for node in range_nodes(start, end)}


def proof_from_nodes(ranges: Iterable[Range], hashes: Mapping[Node, bytes] | Callable[[Node], bytes]) -> list[bytes]:
    """The proof for ``ranges``, given the hashes of their perfect subtrees."""
    get = hashes if callable(hashes) else hashes.__getitem__
    return [frontier_root([get(node) for node in range_nodes(start, end)]) for start, end in ranges]


def _leaf_node_hashes(leaf_hashes: Sequence[bytes]) -> Callable[[Node], bytes]:
    def get(node: Node) -> bytes:
        level, index = node
        return root(leaf_hashes[index << level : (index + 1) << level])

    return get


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of all ``leaf_hashes``."""
    return proof_from_nodes(inclusion_ranges(index, len(leaf_hashes)), _leaf_node_hashes(leaf_hashes))


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the first ``old_size`` leaves are a prefix of all ``leaf_hashes``."""
    return proof_from_nodes(consistency_ranges(old_size, len(leaf_hashes)), _leaf_node_hashes(leaf_hashes))


def subtree_inclusion_proof(leaf_hashes: Sequence[bytes], index: int, start: int, end: int) -> list[bytes]:
    """The path of leaf ``index`` up to the root of subtree ``[start, end)``."""
    if not (_subtree_is_valid(start, end) and start <= index < end <= len(leaf_hashes)):
        raise ValueError(f"leaf {index} is not in a subtree [{start}, {end}) of {len(leaf_hashes)} leaves")
    return inclusion_proof(leaf_hashes[start:end], index - start)


def subtree_consistency_proof(leaf_hashes: Sequence[bytes], start: int, end: int) -> list[bytes]:
    """The proof that subtree ``[start, end)`` sits at those positions in the whole tree."""
    return proof_from_nodes(subtree_consistency_ranges(start, end, len(leaf_hashes)), _leaf_node_hashes(leaf_hashes))


# --- verifiers ------------------------------------------------------------------------------


def _check_hashes(what: str, hashes: Iterable[bytes]) -> None:
    for position, value in enumerate(hashes):
        if not isinstance(value, (bytes, bytearray)) or len(value) != HASH_SIZE:
            raise ProofError(f"{what} element {position} is not a {HASH_SIZE}-byte hash")


def _root_from_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2, steps 1-5, returning the root the proof leads to."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    if not isinstance(leaf, (bytes, bytearray)) or len(leaf) != HASH_SIZE:
        raise ProofError(f"the leaf hash is not {HASH_SIZE} bytes")
    _check_hashes("proof", proof)
    fn, sn, result = index, size - 1, bytes(leaf)
    for element in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(element, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path to the root")
    return result


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless ``proof`` shows leaf ``index`` with ``leaf_hash`` under ``root``."""
    if _root_from_inclusion(leaf_hash, index, tree_size, proof) != root:
        raise ProofError("the inclusion proof leads to a different root")


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """Raise ProofError unless ``proof`` shows the tree ``old_root`` is a prefix of ``new_root``."""
    if old_size < 0 or new_size < old_size:
        raise ProofError(f"a tree cannot shrink from size {old_size} to {new_size}")
    if old_size == 0:
        raise ProofError("every tree extends the empty tree; a proof from size 0 proves nothing")
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if old_root != new_root:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("the proof is empty")
    _check_hashes("proof", proof)
    # RFC 9162 2.1.4.2.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the trees allow")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(element, fr), node_hash(element, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the trees need")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")


def _subtree_is_valid(start: int, end: int) -> bool:
    """[start, end) is a subtree: ``start`` is 0 or a multiple of bit_ceil(end - start)."""
    if start < 0 or end < start:
        return False
    if start == 0 or start == end:
        return True
    ceiling = 1 << (end - start - 1).bit_length()
    return start % ceiling == 0


def verify_subtree_inclusion(leaf_hash: bytes, index: int, start: int, end: int, proof: Sequence[bytes], subtree_root: bytes) -> None:
    """Raise ProofError unless ``proof`` shows leaf ``index`` under subtree ``[start, end)``."""
    if start >= end or not _subtree_is_valid(start, end):
        raise ProofError(f"[{start}, {end}) is not a subtree")
    if not start <= index < end:
        raise ProofError(f"leaf {index} is outside [{start}, {end})")
    verify_inclusion(leaf_hash, index - start, end - start, proof, subtree_root)


def verify_subtree_consistency(start: int, end: int, size: int, proof: Sequence[bytes], subtree_root: bytes, root: bytes) -> None:
    """Raise ProofError unless ``proof`` shows subtree ``[start, end)`` at its place in the tree."""
    if not _subtree_is_valid(start, end):
        raise ProofError(f"[{start}, {end}) is not a subtree")
    if end > size:
        raise ProofError(f"the subtree ends at {end}, beyond the tree size {size}")
    if start == end:  # the empty subtree is part of every tree
        if proof:
            raise ProofError("an empty subtree needs an empty proof")
        if subtree_root != EMPTY_ROOT:
            raise ProofError("an empty subtree's root is SHA-256 of nothing")
        return
    if start == 0 and end == size:
        if proof:
            raise ProofError("the subtree is the whole tree, so the proof must be empty")
        if subtree_root != root:
            raise ProofError("the subtree is the whole tree but the roots differ")
        return
    if not proof:
        raise ProofError("the proof is empty")
    _check_hashes("proof", proof)
    # fn, sn and tn follow the subtree's first and last leaves and the tree's last leaf up
    # the levels; a right shift climbs one level.
    fn, sn, tn = start, end - 1, size - 1
    if sn == tn:
        while fn != sn:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    else:
        while fn != sn and sn & 1:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if fn == sn:
        fr = sr = subtree_root
        rest = list(proof)
    else:
        fr = sr = proof[0]
        rest = list(proof[1:])
    for element in rest:
        if tn == 0:
            raise ProofError("the proof is longer than the tree allows")
        if sn & 1 or sn == tn:
            if fn < sn:
                fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            while not sn & 1 and sn != 0:
                fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
        else:
            sr = node_hash(sr, element)
        fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if tn != 0:
        raise ProofError("the proof is shorter than the tree needs")
    if fr != subtree_root:
        raise ProofError("the proof does not lead to the subtree root")
    if sr != root:
        raise ProofError("the proof does not lead to the tree root")
