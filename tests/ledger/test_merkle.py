"""ledger.merkle against the transparency-dev/merkle probes, exhaustively, and by property."""

import base64
import json
from functools import lru_cache
from pathlib import Path

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ledger import merkle

# A copy of ../shared/test-vectors/merkle (transparency-dev/merkle, Apache-2.0), kept in the
# repository so that a clone anywhere runs them; the test below keeps the copy honest.
VECTORS = Path(__file__).resolve().parent / "vectors" / "merkle"
SHARED_VECTORS = Path(settings.BASE_DIR).parent / "shared" / "test-vectors" / "merkle"
PROBES = sorted(VECTORS.glob("**/*.json"))


def _b64(text):
    return base64.b64decode(text) if text else b""


def _check_probe(kind: str, probe: dict) -> None:
    proof = [_b64(element) for element in probe["proof"] or []]
    if kind == "inclusion":
        merkle.verify_inclusion(_b64(probe["leafHash"]), probe["leafIdx"], probe["treeSize"], proof, _b64(probe["root"]))
    elif kind == "consistency":
        merkle.verify_consistency(probe["size1"], probe["size2"], proof, _b64(probe["root1"]), _b64(probe["root2"]))
    elif kind == "subtreeinclusion":
        merkle.verify_subtree_inclusion(
            _b64(probe["leafHash"]), probe["leafIdx"], probe["start"], probe["end"], proof, _b64(probe["root"])
        )
    else:
        merkle.verify_subtree_consistency(
            probe["start"], probe["end"], probe["size"], proof, _b64(probe["root1"]), _b64(probe["root2"])
        )


def test_all_518_reference_probes_are_there():
    assert len(PROBES) == 518


@pytest.mark.skipif(not SHARED_VECTORS.is_dir(), reason="no ../shared checkout next to the project")
def test_the_probe_copy_matches_the_shared_vectors():
    shared = {path.relative_to(SHARED_VECTORS): path.read_bytes() for path in SHARED_VECTORS.glob("**/*.json")}
    copied = {path.relative_to(VECTORS): path.read_bytes() for path in PROBES}
    assert copied == shared


@pytest.mark.parametrize("path", PROBES, ids=lambda path: str(path.relative_to(VECTORS)))
def test_reference_probe(path):
    probe = json.loads(path.read_text())
    kind = path.relative_to(VECTORS).parts[0]
    if probe["wantErr"]:
        with pytest.raises(merkle.ProofError):
            _check_probe(kind, probe)
    else:
        assert _check_probe(kind, probe) is None


# --- an independent reference: RFC 9162 section 2.1 read literally, over 200 leaves --------

LEAVES = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(200)]


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@lru_cache(maxsize=None)
def mth(start, end):
    if end == start:
        return merkle.EMPTY_ROOT
    if end - start == 1:
        return LEAVES[start]
    k = _k(end - start)
    return merkle.node_hash(mth(start, start + k), mth(start + k, end))


def rfc_path(m, start, end):
    if end - start == 1:
        return []
    k = _k(end - start)
    if m - start < k:
        return rfc_path(m, start, start + k) + [mth(start + k, end)]
    return rfc_path(m, start + k, end) + [mth(start, start + k)]


def rfc_subproof(m, start, end, complete):
    n = end - start
    if m == n:
        return [] if complete else [mth(start, end)]
    k = _k(n)
    if m <= k:
        return rfc_subproof(m, start, start + k, complete) + [mth(start + k, end)]
    return rfc_subproof(m - k, start + k, end, False) + [mth(start, start + k)]


def _all_nodes():
    nodes, frontier = {}, []
    for size, leaf in enumerate(LEAVES):
        frontier, completed = merkle.frontier_append(frontier, size, leaf)
        nodes.update({(level, index): value for level, index, value in completed})
    return nodes


NODES = _all_nodes()


def test_known_roots_of_the_classic_test_leaves():
    # Roots 1..8 of RFC 6962's test inputs, from transparency-dev/merkle's proofgen.
    data = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f"]]
    leaves = [merkle.leaf_hash(d) for d in data]
    assert merkle.root(leaves[:1]).hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.root(leaves[:3]).hex() == "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
    assert merkle.root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    assert merkle.root([]) == merkle.EMPTY_ROOT


def test_every_leaf_of_every_tree_up_to_200_has_the_rfc_path_and_verifies():
    for size in range(1, 201):
        assert merkle.proof_from_nodes([(0, size)], NODES) == [mth(0, size)]
        for index in range(size):
            proof = merkle.proof_from_nodes(merkle.inclusion_ranges(index, size), NODES)
            assert proof == rfc_path(index, 0, size), (index, size)
            merkle.verify_inclusion(LEAVES[index], index, size, proof, mth(0, size))


def test_every_size_pair_up_to_100_has_the_rfc_proof_and_verifies():
    for new in range(1, 101):
        for old in range(1, new + 1):
            proof = merkle.proof_from_nodes(merkle.consistency_ranges(old, new), NODES)
            assert proof == (rfc_subproof(old, 0, new, True) if old < new else []), (old, new)
            merkle.verify_consistency(old, new, proof, mth(0, old), mth(0, new))


def test_the_list_functions_agree_with_the_node_path_for_small_trees():
    for size in range(1, 40):
        leaves = LEAVES[:size]
        assert merkle.root(leaves) == mth(0, size)
        for index in range(size):
            assert merkle.inclusion_proof(leaves, index) == rfc_path(index, 0, size)
        for old in range(1, size + 1):
            assert merkle.consistency_proof(leaves, old) == (rfc_subproof(old, 0, size, True) if old < size else [])


def test_every_subtree_proof_in_trees_up_to_40_verifies():
    for size in range(1, 41):
        for start in range(size):
            for end in range(start + 1, size + 1):
                if not merkle._subtree_is_valid(start, end):
                    with pytest.raises(ValueError):
                        merkle.subtree_consistency_proof(LEAVES[:size], start, end)
                    continue
                proof = merkle.subtree_consistency_proof(LEAVES[:size], start, end)
                merkle.verify_subtree_consistency(start, end, size, proof, mth(start, end), mth(0, size))
                index = (start + end) // 2
                path = merkle.subtree_inclusion_proof(LEAVES[:size], index, start, end)
                merkle.verify_subtree_inclusion(LEAVES[index], index, start, end, path, mth(start, end))


def test_a_proof_reads_only_a_logarithmic_number_of_nodes():
    size = 10**6 + 12345
    for index in (0, 1, size // 2, size - 2, size - 1):
        assert len(merkle.proof_nodes(merkle.inclusion_ranges(index, size))) <= 2 * size.bit_length()
    for old in (1, 3, 1000, size // 2 + 1, size - 1):
        assert len(merkle.proof_nodes(merkle.consistency_ranges(old, size))) <= 2 * size.bit_length()


def test_frontier_append_rejects_a_frontier_of_the_wrong_length():
    with pytest.raises(ValueError):
        merkle.frontier_append([], 3, LEAVES[0])


def test_proof_builders_reject_impossible_requests():
    for call in (
        lambda: merkle.inclusion_proof(LEAVES[:4], 4),
        lambda: merkle.inclusion_proof([], 0),
        lambda: merkle.consistency_proof(LEAVES[:4], 0),
        lambda: merkle.consistency_proof(LEAVES[:4], 5),
    ):
        with pytest.raises(ValueError):
            call()


# --- properties --------------------------------------------------------------------------

sizes = st.integers(min_value=1, max_value=200)


@hypothesis_settings(max_examples=150, deadline=None)
@given(data=st.data(), size=sizes)
def test_property_inclusion_proofs_verify_and_any_change_breaks_them(data, size):
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = merkle.proof_from_nodes(merkle.inclusion_ranges(index, size), NODES)
    merkle.verify_inclusion(LEAVES[index], index, size, proof, mth(0, size))
    other = data.draw(st.integers(min_value=0, max_value=size - 1).filter(lambda i: i != index)) if size > 1 else None
    if other is not None:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[other], index, size, proof, mth(0, size))
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[index], other, size, proof, mth(0, size))
    if proof:
        position = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=255))
        damaged = list(proof)
        flipped = bytearray(damaged[position])
        flipped[bit // 8] ^= 1 << (bit % 8)
        damaged[position] = bytes(flipped)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[index], index, size, damaged, mth(0, size))
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(LEAVES[index], index, size, proof[:-1], mth(0, size))


@hypothesis_settings(max_examples=150, deadline=None)
@given(data=st.data(), new=sizes)
def test_property_consistency_proofs_verify_only_for_the_true_roots(data, new):
    old = data.draw(st.integers(min_value=1, max_value=new))
    proof = merkle.proof_from_nodes(merkle.consistency_ranges(old, new), NODES)
    merkle.verify_consistency(old, new, proof, mth(0, old), mth(0, new))
    assert len(proof) <= 2 * new.bit_length()
    if old < new:
        forged = merkle.node_hash(mth(0, old), b"\x00" * 32)
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, new, proof, forged, mth(0, new))
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, new, proof, mth(0, old), forged)
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, new, proof + [forged], mth(0, old), mth(0, new))


@hypothesis_settings(max_examples=100, deadline=None)
@given(leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=64))
def test_property_root_splits_at_the_largest_power_of_two(leaves):
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    if len(hashes) == 1:
        assert merkle.root(hashes) == hashes[0]
    else:
        k = _k(len(hashes))
        assert merkle.root(hashes) == merkle.node_hash(merkle.root(hashes[:k]), merkle.root(hashes[k:]))
