"""The stand-alone verifier on a downloaded statement: an issued statement's JSON passes,
and each kind of tampering fails, naming what is wrong."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from incentives.documents import document_sha256, statement_document
from ledger import verify_export
from ledger.signing import public_key_bytes
from tests.incentives.conftest import valued_run
from tests.incentives.worlds import pools_in_every_state

pytestmark = pytest.mark.django_db
VERIFIER = Path(verify_export.__file__)


@pytest.fixture
def vrun(consortium, participants, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = valued_run(consortium, participants)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    return run


@pytest.fixture
def pools(consortium, vrun):
    return pools_in_every_state(consortium, vrun)


@pytest.fixture
def document(pools):
    return statement_document(statement=pools["issued"].statements.get(participant__slug="alpha"))


@pytest.fixture
def key() -> str:
    return base64.b64encode(public_key_bytes()).decode()


def _verify(tmp_path, capsys, document, key) -> tuple[int, str]:
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    status = verify_export.main(["--statement", str(path), "--public-key", key])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def _rehashed(document: dict) -> dict:
    """What a careful forger sends: the document hash recomputed after the change."""
    document["document_sha256"] = document_sha256(document)
    return document


def test_an_issued_statement_passes_as_a_separate_program_with_no_project_on_its_path(
        tmp_path, document, key):
    path = tmp_path / "statement.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    copy = tmp_path / "verify_export.py"  # a participant's copy, away from the project
    copy.write_text(VERIFIER.read_text())
    result = subprocess.run([sys.executable, "-I", str(copy), "--statement", str(path), "--public-key", key],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: statement") and document["statement"]["amount"] in result.stdout


def test_a_changed_amount_fails_naming_the_amount_even_with_the_hash_recomputed(tmp_path, capsys, document, key):
    document["statement"]["amount"] = "999999.99"
    status, output = _verify(tmp_path, capsys, _rehashed(document), key)
    assert status == 1 and "the document says amount 999999.99" in output


@pytest.mark.parametrize("field", ["participant", "currency", "share", "contribution"])
def test_a_changed_figure_that_the_entry_records_fails_naming_it(tmp_path, capsys, document, key, field):
    document["statement"][field] = {"currency": "USD", "share": "1/1"}.get(field, "beta" if field == "participant"
                                                                           else "0.5")
    status, output = _verify(tmp_path, capsys, _rehashed(document), key)
    assert status == 1 and (f"says {field}" in output or "concerns" in output), output


def test_a_changed_entry_fails_on_its_leaf_hash(tmp_path, capsys, document, key):
    entry = document["ledger"]["entry"]
    entry["canonical"] = entry["canonical"].replace('"participant":"alpha"', '"participant":"beta"')
    status, output = _verify(tmp_path, capsys, document, key)
    assert status == 1 and "do not hash to its leaf hash" in output


def test_a_changed_entry_with_its_leaf_hash_recomputed_is_not_in_the_signed_tree(tmp_path, capsys, document, key):
    entry = document["ledger"]["entry"]
    entry["canonical"] = entry["canonical"].replace('"participant":"alpha"', '"participant":"beta"')
    entry["leaf_hash"] = verify_export.leaf_hash(entry["canonical"].encode()).hex()
    status, output = _verify(tmp_path, capsys, document, key)
    assert status == 1 and "does not lead to the checkpoint's root" in output


def test_a_changed_proof_hash_fails_the_inclusion(tmp_path, capsys, document, key):
    hashes = document["ledger"]["inclusion"]["hashes"]
    assert hashes, "the issued pool's tree has more than one entry"
    hashes[0] = ("0" if hashes[0][0] != "0" else "1") + hashes[0][1:]
    status, output = _verify(tmp_path, capsys, document, key)
    assert status == 1 and "inclusion proof does not lead" in output


def test_a_changed_checkpoint_signature_fails(tmp_path, capsys, document, key):
    checkpoint = document["ledger"]["checkpoint"]
    body, _, signature = checkpoint["note"].partition("\n\n")
    name, _, blob = signature.strip().rpartition(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    checkpoint["note"] = f"{body}\n\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
    status, output = _verify(tmp_path, capsys, document, key)
    assert status == 1 and "checkpoint signature is invalid" in output


def test_a_checkpoint_note_with_another_tree_size_fails_its_signature(tmp_path, capsys, document, key):
    checkpoint = document["ledger"]["checkpoint"]
    size = str(document["ledger"]["inclusion"]["tree_size"])
    checkpoint["note"] = checkpoint["note"].replace(f"\n{size}\n", f"\n{int(size) + 1}\n", 1)
    status, output = _verify(tmp_path, capsys, document, key)
    assert status == 1 and "checkpoint signature is invalid" in output


def test_another_public_key_fails(tmp_path, capsys, document):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw,
                                                                  serialization.PublicFormat.Raw)
    status, output = _verify(tmp_path, capsys, document, base64.b64encode(other).decode())
    assert status == 1 and "not signed by the given public key" in output


def test_a_changed_figure_the_ledger_does_not_hold_fails_the_document_hash(tmp_path, capsys, document, key):
    document["statement"]["participant_name"] = "Someone Else"
    status, output = _verify(tmp_path, capsys, document, key)
    assert status == 1 and "document hash does not match" in output


def test_a_draft_fails_saying_it_is_not_in_the_ledger(tmp_path, capsys, pools, key):
    draft = statement_document(statement=pools["drafted"].statements.get(participant__slug="alpha"))
    status, output = _verify(tmp_path, capsys, draft, key)
    assert status == 1 and "draft" in output


@pytest.mark.parametrize("mangle", [
    lambda d: d.update(statement=[]),
    lambda d: d["ledger"].update(entry={"canonical": 5}),
    lambda d: d["statement"].update(allocated="1e3"),
    lambda d: d.update(format="something-else"),
])
def test_a_malformed_document_fails_without_a_traceback(tmp_path, capsys, document, key, mangle):
    mangle(document)
    status, output = _verify(tmp_path, capsys, _rehashed(document) if document.get("statement") != [] else document,
                             key)
    assert status == 1 and output.startswith("FAILED:") and "Traceback" not in output


def test_a_revised_statement_from_an_upheld_dispute_passes_with_its_reserve_funded_difference(
    tmp_path, capsys, consortium, pools, key
):
    from consortium.access import Principal
    from incentives.services import dispute_decide, dispute_file, dispute_review
    from tests.factories import MembershipFactory

    original = pools["issued"].statements.get(participant__slug="alpha")
    alpha = consortium.participants.get(slug="alpha")
    filer = Principal(user=MembershipFactory(consortium=consortium, role="participant", participant=alpha).user)
    governance = Principal(user=MembershipFactory(consortium=consortium, role="governance").user)
    dispute = dispute_file(actor=filer, statement=original, line="amount", reason="Too low.")
    dispute_review(actor=governance, dispute=dispute)
    dispute = dispute_decide(actor=governance, dispute=dispute, outcome="upheld", amount=original.amount + 25)
    revised = statement_document(statement=dispute.revised_statement)
    assert revised["statement"]["version"] == 2 and revised["ledger"]["checkpoint"] is not None
    status, output = _verify(tmp_path, capsys, revised, key)
    assert status == 0, output
    status, output = _verify(tmp_path, capsys, statement_document(statement=original), key)
    assert status == 0, output  # version 1 stays readable and provable
