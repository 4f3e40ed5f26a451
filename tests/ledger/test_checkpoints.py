"""Signed checkpoints: the note format, the signature, one per size, the development key."""

import base64
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from core.errors import InvalidInput
from ledger import merkle, signing
from ledger.models import Checkpoint, LedgerEntry
from ledger.notes import NoteError, key_hash, note_verify
from ledger.services import checkpoint_create
from tests.ledger.conftest import TEST_SEED

pytestmark = pytest.mark.django_db


def test_a_checkpoint_signs_size_root_and_time_in_a_signed_note(consortium, receipt):
    for _ in range(5):
        receipt(consortium)
    checkpoint = checkpoint_create()
    leaves = [bytes(h) for h in LedgerEntry.objects.order_by("seq").values_list("leaf_hash", flat=True)]
    assert checkpoint.tree_size == 5 and bytes(checkpoint.root) == merkle.root(leaves)
    body, _, signature_line = checkpoint.note.partition("\n\n")
    origin, size, root, timestamp = body.split("\n")
    assert (origin, size, base64.b64decode(root)) == ("fairshare.local/ledger", "5", bytes(checkpoint.root))
    assert timestamp.startswith("timestamp 20") and timestamp.endswith("Z")
    dash, name, blob = signature_line.strip().split(" ")
    blob = base64.b64decode(blob)
    public_key = signing.public_key_bytes()
    assert (dash, name, blob[:4]) == ("\u2014", origin, key_hash(origin, public_key))
    Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], (body + "\n").encode())
    assert note_verify(checkpoint.note, public_keys=[public_key]).tree_size == 5


def test_a_note_with_a_changed_line_or_an_unknown_key_is_refused(consortium, receipt):
    receipt(consortium)
    note = checkpoint_create().note
    with pytest.raises(NoteError, match="does not verify"):
        note_verify(note.replace("\n1\n", "\n2\n", 1), public_keys=[signing.public_key_bytes()])
    with pytest.raises(NoteError, match="no signature by a trusted"):
        note_verify(note, public_keys=[bytes(32)])


def test_one_checkpoint_per_tree_size(consortium, receipt):
    receipt(consortium)
    first = checkpoint_create()
    assert checkpoint_create().pk == first.pk
    receipt(consortium)
    assert checkpoint_create().tree_size == 2 and Checkpoint.objects.count() == 2


def test_an_empty_ledger_has_no_checkpoint():
    with pytest.raises(InvalidInput, match="nothing to checkpoint"):
        checkpoint_create()
    with pytest.raises(CommandError, match="nothing to checkpoint"):
        call_command("ledger_checkpoint")


def test_the_checkpoint_command_prints_the_note(consortium, receipt, capsys):
    receipt(consortium)
    call_command("ledger_checkpoint")
    assert capsys.readouterr().out == Checkpoint.objects.get().note


def test_the_configured_key_is_used(settings):
    settings.LEDGER_SIGNING_KEY = base64.b64encode(TEST_SEED).decode()
    other = base64.b64encode(bytes(32)).decode()
    first = signing.public_key_bytes()
    settings.LEDGER_SIGNING_KEY = other
    assert signing.public_key_bytes() != first


def test_development_generates_one_key_file_and_keeps_it(settings, tmp_path):
    settings.LEDGER_SIGNING_KEY = ""
    settings.DEBUG = True
    settings.LEDGER_SIGNING_KEY_FILE = tmp_path / "var" / "ledger_signing_key"
    public_key = signing.public_key_bytes()
    assert stat.S_IMODE(settings.LEDGER_SIGNING_KEY_FILE.stat().st_mode) == 0o600
    signing._cache.clear()
    assert signing.public_key_bytes() == public_key


def test_production_without_a_key_refuses(settings, tmp_path):
    settings.LEDGER_SIGNING_KEY = ""
    settings.DEBUG = False
    settings.LEDGER_SIGNING_KEY_FILE = tmp_path / "absent"
    with pytest.raises(ImproperlyConfigured, match="LEDGER_SIGNING_KEY"):
        signing.signing_key()


@pytest.mark.parametrize("value", ["not base64!", base64.b64encode(b"short").decode()])
def test_a_malformed_key_is_refused(settings, value):
    settings.LEDGER_SIGNING_KEY = value
    with pytest.raises(ImproperlyConfigured):
        signing.signing_key()


def test_a_rotated_key_stays_trusted_when_listed(settings, consortium, receipt):
    from ledger.services.verify import ledger_verify

    receipt(consortium)
    checkpoint_create()
    old_public = base64.b64encode(signing.public_key_bytes()).decode()
    settings.LEDGER_SIGNING_KEY = base64.b64encode(bytes(range(1, 33))).decode()
    assert "does not trust" in str(ledger_verify().problem)
    settings.LEDGER_TRUSTED_PUBLIC_KEYS = [old_public]
    assert ledger_verify().ok
