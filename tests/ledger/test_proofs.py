"""Proofs served from the stored nodes: equal to the pure ones, and O(log n) to read."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.errors import InvalidInput
from ledger import merkle
from ledger.models import LedgerEntry
from ledger.services import ProofUnavailable, consistency_get, inclusion_proof_get, tree_root

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaves(consortium, receipt):
    for i in range(37):
        receipt(consortium, amount=f"{i + 1}.00")
    return [bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("leaf_hash", flat=True)]


def test_stored_roots_and_proofs_equal_the_pure_functions(leaves):
    for size in range(1, 38):
        root = merkle.root(leaves[:size])
        assert tree_root(size=size) == root
        for seq in range(size):
            proof = inclusion_proof_get(seq=seq, tree_size=size)
            assert proof == merkle.inclusion_proof(leaves[:size], seq)
            merkle.verify_inclusion(leaves[seq], seq, size, proof, root)
        for old in {min(old, size) for old in (1, 2, 3, size // 2 or 1, size - 1 or 1, size)}:
            proof, old_root, new_root = consistency_get(old_size=old, new_size=size)
            assert proof == merkle.consistency_proof(leaves[:size], old)
            assert (old_root, new_root) == (merkle.root(leaves[:old]), root)


def test_a_proof_is_one_query_reading_a_logarithmic_number_of_rows(leaves):
    with CaptureQueriesContext(connection) as queries:
        inclusion_proof_get(seq=17, tree_size=37)
    node_queries = [q["sql"] for q in queries.captured_queries if "ledger_node" in q["sql"]]
    assert len(node_queries) == 1
    assert len(queries.captured_queries) == 1
    with CaptureQueriesContext(connection) as queries:
        consistency_get(old_size=13, new_size=37)
    assert len([q for q in queries.captured_queries if "ledger_node" in q["sql"]]) == 1


def test_sizes_beyond_the_ledger_are_refused(leaves):
    for call, field in (
        (lambda: tree_root(size=38), "size"),
        (lambda: tree_root(size=-1), "size"),
        (lambda: inclusion_proof_get(seq=37, tree_size=38), "tree_size"),
        (lambda: inclusion_proof_get(seq=37, tree_size=37), "seq"),
        (lambda: consistency_get(old_size=5, new_size=40), "new_size"),
        (lambda: consistency_get(old_size=0, new_size=5), "old_size"),
    ):
        with pytest.raises(ProofUnavailable) as excinfo:
            call()
        # Client input, answered 400 by the one exception handler.
        assert isinstance(excinfo.value, InvalidInput) and excinfo.value.field == field


def test_a_missing_stored_node_is_a_corrupt_ledger_not_bad_input(leaves):
    from ledger.services import LedgerCorrupt
    from tests.ledger.tampering import tamper

    tamper("DELETE FROM ledger_node WHERE level = 0 AND idx = 36")
    with pytest.raises(LedgerCorrupt, match="missing Merkle node"):
        inclusion_proof_get(seq=36, tree_size=37)


def test_the_empty_tree_has_the_empty_root():
    assert tree_root(size=0) == merkle.EMPTY_ROOT
