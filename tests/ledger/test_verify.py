"""verify_ledger finds every kind of tampering and names the first bad entry.

Each test builds a small ledger with a checkpoint, tampers with it as a database superuser
(triggers disabled; see tampering.py), and expects verification to fail at the right entry.
They run on SQLite and on PostgreSQL.
"""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from ledger import canonical, merkle
from ledger.models import LedgerEntry
from ledger.services import checkpoint_create, entry_append
from ledger.services.verify import ledger_verify
from tests.ledger.tampering import rewrite_history, tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(consortium, participants, receipt):
    for amount in ("100.00", "200.00", "300.00"):
        receipt(consortium, amount=amount)
    entry_append(consortium=consortium, kind="transaction", body={"memo": "statement"}, actor="system:test",
                 reference_type="statement", reference_id="s-1",
                 postings=[("revenue_pool", Decimal("-60.00"), "EUR"), ("participant_payable:alpha", Decimal("60.00"), "EUR")])
    entry_append(consortium=consortium, kind="record", body={"digest": "ab" * 32}, actor="system:test",
                 reference_type="valuation_run", reference_id="7", participants=["beta"])
    receipt(consortium, amount="5.00")
    return checkpoint_create()


def _failure(**kwargs) -> str:
    report = ledger_verify(chunk_size=4, **kwargs)  # small chunks: the chunk edges get exercised
    assert not report.ok, "verification should have failed"
    return str(report.problem)


def test_an_intact_ledger_verifies(ledger):
    report = ledger_verify(chunk_size=4)
    assert report.ok, report.problem
    assert report.entries == 6 and report.checkpoints == 1 and report.root == bytes(ledger.root)


def test_an_altered_posting_amount_is_named(ledger):
    tamper("UPDATE ledger_posting SET amount_minor = amount_minor * 10 WHERE entry_id = 3")
    assert _failure().startswith("entry 3: altered: the row's postings differ")


def test_an_altered_column_is_named(ledger):
    tamper("UPDATE ledger_entry SET actor = 'user:mallory' WHERE seq = 2")
    assert _failure().startswith("entry 2: altered: the row's actor differ")


def test_altered_canonical_bytes_are_named(ledger):
    entry = LedgerEntry.objects.get(seq=1)
    forged = bytes(entry.canonical).replace(b'"200.00"', b'"2000.00"').replace(b'"-200.00"', b'"-2000.00"')
    tamper("UPDATE ledger_entry SET canonical = %s WHERE seq = 1", [forged])
    assert _failure() == "entry 1: altered: the stored leaf hash is not the hash of the entry's canonical bytes"


def test_altered_bytes_with_a_recomputed_hash_are_named_by_the_merkle_node(ledger):
    entry = LedgerEntry.objects.get(seq=1)
    forged = bytes(entry.canonical).replace(b'"receipt"', b'"refund!"')
    tamper("UPDATE ledger_entry SET canonical = %s, leaf_hash = %s WHERE seq = 1", [forged, merkle.leaf_hash(forged)])
    assert _failure() == "entry 1: Merkle node (0, 1) completed by this entry is wrong"


def test_a_broken_link_is_named(ledger):
    tamper("UPDATE ledger_entry SET prev_hash = %s WHERE seq = 2", [bytes(32)])
    assert _failure().startswith("entry 2: chain broken: it does not link to entry 1")


def test_a_deleted_entry_is_named(ledger):
    tamper("DELETE FROM ledger_entry_participant WHERE entry_id = 2")
    tamper("DELETE FROM ledger_posting WHERE entry_id = 2")
    tamper("DELETE FROM ledger_entry WHERE seq = 2")
    assert _failure() == "entry 2: missing: the next stored entry is 3 (deleted or renumbered)"


def test_a_deleted_last_entry_is_caught_by_the_checkpoint(ledger):
    tamper("DELETE FROM ledger_posting WHERE entry_id = 5")
    tamper("DELETE FROM ledger_entry WHERE seq = 5")
    assert "covers 6 entries but the ledger has only 5" in _failure()


def test_reordered_entries_are_named(ledger):
    tamper("UPDATE ledger_entry SET seq = -1 WHERE seq = 2")
    tamper("UPDATE ledger_entry SET seq = 2 WHERE seq = 3")
    tamper("UPDATE ledger_entry SET seq = 3 WHERE seq = -1")
    assert _failure() == "entry 2: moved: the entry's bytes say seq 3 (reordered or inserted)"


def test_an_entry_inserted_in_the_middle_is_named(ledger, consortium):
    for seq in (5, 4, 3):  # make room, carrying postings and participant links along
        tamper("UPDATE ledger_entry SET seq = %s WHERE seq = %s", [seq + 1, seq])
        tamper("UPDATE ledger_posting SET entry_id = %s WHERE entry_id = %s", [seq + 1, seq])
        tamper("UPDATE ledger_entry_participant SET entry_id = %s WHERE entry_id = %s", [seq + 1, seq])
    before = LedgerEntry.objects.get(seq=2)
    document = canonical.entry_document(
        seq=3, prev_hash=bytes(before.leaf_hash), time=before.created_at, kind="record",
        consortium_id=str(consortium.pk), reference_type="policy", reference_id="forged", participants=[],
        actor="user:mallory", idempotency_key=None, body={}, postings=[],
    )
    data = canonical.canonical_bytes(document)
    tamper(
        "INSERT INTO ledger_entry (seq, kind, consortium_id, reference_type, reference_id, actor, created_at, "
        "idempotency_key, prev_hash, leaf_hash, canonical) VALUES (3, 'record', %s, 'policy', 'forged', "
        "'user:mallory', %s, NULL, %s, %s, %s)",
        [consortium.pk.hex if consortium_id_is_text() else consortium.pk, before.created_at,
         bytes(before.leaf_hash), merkle.leaf_hash(data), data],
    )
    assert _failure() == "entry 3: Merkle node (0, 3) completed by this entry is wrong"


def test_an_entry_appended_around_the_service_is_named(ledger, consortium):
    last = LedgerEntry.objects.get(seq=5)
    document = dict(last.document, seq=6, prev=bytes(last.leaf_hash).hex())
    data = canonical.canonical_bytes(document)
    tamper(
        "INSERT INTO ledger_entry (seq, kind, consortium_id, reference_type, reference_id, actor, created_at, "
        "idempotency_key, prev_hash, leaf_hash, canonical) SELECT 6, kind, consortium_id, reference_type, "
        "reference_id, actor, created_at, NULL, %s, %s, %s FROM ledger_entry WHERE seq = 5",
        [bytes(last.leaf_hash), merkle.leaf_hash(data), data],
    )
    tamper("INSERT INTO ledger_posting (entry_id, line, account, currency, amount_minor) "
           "SELECT 6, line, account, currency, amount_minor FROM ledger_posting WHERE entry_id = 5")
    assert _failure() == "entry 6: Merkle node (0, 6) completed by this entry is missing"


def test_a_consistent_rewrite_of_history_is_caught_by_the_signed_checkpoint(ledger):
    def richer(document):
        if document["seq"] == 3:
            document["postings"][1]["amount"], document["postings"][0]["amount"] = "600.00", "-600.00"
        return document

    rewrite_history(richer)
    assert "but checkpoint" in _failure() and "were rewritten" in _failure()


def test_a_rewrite_that_also_removes_the_checkpoints_is_caught_by_a_held_checkpoint(ledger):
    held = ledger.note
    rewrite_history(lambda document: dict(document, actor="user:mallory"))
    tamper("DELETE FROM ledger_checkpoint")
    assert ledger_verify().ok  # nothing inside the database can tell any more...
    assert "held checkpoint kept.txt (size 6)" in _failure(held_notes=[("kept.txt", held)])  # ...a kept copy can


def test_an_unbalanced_transaction_is_named(ledger):
    def unbalance(document):
        if document["seq"] == 1:
            document["postings"][1]["amount"] = "250.00"
        return document

    rewrite_history(unbalance)
    assert _failure() == "entry 1: unbalanced: postings do not sum to zero in EUR"


def test_a_tampered_merkle_node_is_named(ledger):
    tamper("UPDATE ledger_node SET hash = %s WHERE level = 1 AND idx = 1", [bytes(32)])
    assert _failure() == "entry 3: Merkle node (1, 1) completed by this entry is wrong"


def test_an_extra_merkle_node_is_found(ledger):
    tamper("INSERT INTO ledger_node (level, idx, hash) VALUES (5, 99, %s)", [bytes(32)])
    assert "ledger_node holds" in _failure()


def test_a_posting_that_belongs_to_no_entry_is_found(ledger):
    tamper("INSERT INTO ledger_posting (entry_id, line, account, currency, amount_minor) "
           "VALUES (999, 0, 'paid:alpha', 'EUR', 100000)")
    assert _failure() == "ledger_posting holds 1 row(s) that belong to no entry"


def test_a_tampered_checkpoint_is_named(ledger):
    tamper("UPDATE ledger_checkpoint SET root = %s", [bytes(32)])
    assert "checkpoint" in _failure() and "signature does not verify" in _failure()


def test_a_checkpoint_signed_by_an_untrusted_key_is_refused(ledger):
    tamper("UPDATE ledger_checkpoint SET public_key = %s", [bytes(32)])
    assert "a key this deployment does not trust" in _failure()


def test_a_head_moved_forward_is_found(ledger):
    tamper("UPDATE ledger_head SET size = size + 1")
    assert "the head says the ledger has 7 entries but 6 are stored" in _failure()


def test_verify_ledger_command_exits_0_when_intact_and_1_naming_the_entry(ledger, capsys):
    call_command("verify_ledger")
    assert "ledger intact: 6 entries" in capsys.readouterr().out
    tamper("UPDATE ledger_entry SET reference_id = 'other' WHERE seq = 4")
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_ledger")
    assert excinfo.value.returncode == 1
    assert "entry 4: altered" in str(excinfo.value)


def test_verify_ledger_command_takes_held_checkpoints(ledger, tmp_path, capsys):
    kept = tmp_path / "checkpoint.txt"
    kept.write_text(ledger.note)
    call_command("verify_ledger", "--checkpoint", str(kept))
    assert "2 checkpoint(s) verified" in capsys.readouterr().out
    kept.write_text(ledger.note.replace("fairshare.local/ledger\n6", "fairshare.local/ledger\n5", 1))
    with pytest.raises(CommandError, match="held checkpoint"):
        call_command("verify_ledger", "--checkpoint", str(kept))


def test_an_empty_ledger_verifies():
    assert ledger_verify().ok


def consortium_id_is_text() -> bool:
    from django.db import connection

    return not connection.features.has_native_uuid_field


def test_a_chunk_size_below_one_is_refused_not_reported_as_removed_entries(ledger):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput) as excinfo:
        ledger_verify(chunk_size=0)
    assert excinfo.value.field == "chunk_size"
    with pytest.raises(CommandError, match="chunk size is at least 1"):
        call_command("verify_ledger", "--chunk-size", "0")
