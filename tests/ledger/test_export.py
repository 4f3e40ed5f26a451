"""export_ledger and the stand-alone verify_export.py, run as a participant would run it."""

import base64
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from ledger import signing
from ledger.services import checkpoint_create, entry_append

pytestmark = pytest.mark.django_db

VERIFIER = Path(settings.BASE_DIR) / "ledger" / "verify_export.py"

# Run the copied script with Django and the project made unimportable: it must need neither.
_ISOLATED = (
    "import runpy, sys; "
    "sys.modules.update({'django': None, 'ledger': None, 'consortium': None, 'rfc8785': None}); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_verifier(tmp_path, *args) -> subprocess.CompletedProcess:
    script = tmp_path / "verify_export.py"
    shutil.copy(VERIFIER, script)
    return subprocess.run(
        [sys.executable, "-I", "-c", _ISOLATED, str(script), *map(str, args)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60,
    )


@pytest.fixture
def public_key():
    return base64.b64encode(signing.public_key_bytes()).decode()


@pytest.fixture
def exported(consortium, participants, receipt, tmp_path):
    receipt(consortium, amount="250000.00")
    entry_append(consortium=consortium, kind="transaction", body={"memo": "statement alpha"}, actor="system:test",
                 reference_type="statement", reference_id="s-alpha", idempotency_key="s-alpha",
                 postings=[("revenue_pool", Decimal("-1000.00"), "EUR"), ("participant_payable:alpha", Decimal("1000.00"), "EUR")])
    entry_append(consortium=consortium, kind="record", body={"note": "é \u2028 \U0001f600", "n": 7}, actor="system:test",
                 reference_type="dispute", reference_id="d-1", participants=["beta"])
    checkpoint_create()
    receipt(consortium, amount="1.00")  # after the checkpoint: chained, not yet signed
    path = tmp_path / "ledger.jsonl"
    call_command("export_ledger", "--out", str(path))
    return path


def test_the_export_is_json_lines_whose_entry_lines_are_the_canonical_bytes(exported):
    lines = exported.read_bytes().split(b"\n")
    header, trailer = json.loads(lines[0]), json.loads(lines[-2])
    assert header["format"] == "fairshare-ledger-export" and header["entries"] == 4
    assert header["public_key"] == base64.b64encode(signing.public_key_bytes()).decode()
    assert trailer["checkpoint"]["tree_size"] == 3 and trailer["checkpoint"]["note"].startswith("fairshare.local/ledger\n3\n")
    from ledger.models import LedgerEntry

    assert lines[1:5] == [bytes(e.canonical) for e in LedgerEntry.objects.order_by("seq")]


def test_an_intact_export_verifies_offline(exported, tmp_path, public_key):
    result = run_verifier(tmp_path, exported, "--public-key", public_key)
    assert result.returncode == 0, result.stderr
    assert "OK: 4 entries" in result.stdout and "checkpoint at size 3" in result.stdout


def test_an_export_verifies_with_its_own_key_but_says_so(exported, tmp_path):
    result = run_verifier(tmp_path, exported)
    assert result.returncode == 0 and "pass --public-key" in result.stdout


def test_a_tampered_amount_is_named_offline(exported, tmp_path, public_key):
    exported.write_bytes(exported.read_bytes().replace(b'"1000.00"', b'"9000.00"', 1))
    result = run_verifier(tmp_path, exported, "--public-key", public_key)
    assert result.returncode == 1
    assert "entry 1: the transaction does not balance in EUR" in result.stderr


def test_a_rebalanced_tamper_breaks_the_chain_offline(exported, tmp_path, public_key):
    data = exported.read_bytes().replace(b'"1000.00"', b'"9000.00"', 1).replace(b'"-1000.00"', b'"-9000.00"', 1)
    exported.write_bytes(data)
    result = run_verifier(tmp_path, exported, "--public-key", public_key)
    assert result.returncode == 1 and "entry 2: the hash chain is broken" in result.stderr


def test_a_removed_entry_is_found_offline(exported, tmp_path, public_key):
    lines = exported.read_bytes().split(b"\n")
    header = json.loads(lines[0])
    header["entries"] = 3
    exported.write_bytes(b"\n".join([json.dumps(header).encode(), *lines[1:2], *lines[3:]]))
    result = run_verifier(tmp_path, exported, "--public-key", public_key)
    assert result.returncode == 1 and "entry 1: the entry says seq 2" in result.stderr


def test_a_forged_checkpoint_is_refused_offline(exported, tmp_path, public_key):
    data = exported.read_bytes().replace(b"fairshare.local/ledger\\n3\\n", b"fairshare.local/ledger\\n2\\n")
    exported.write_bytes(data)
    result = run_verifier(tmp_path, exported, "--public-key", public_key)
    assert result.returncode == 1 and "signature is invalid" in result.stderr


def test_another_key_is_refused_offline(exported, tmp_path):
    result = run_verifier(tmp_path, exported, "--public-key", base64.b64encode(bytes(32)).decode())
    assert result.returncode == 1 and "not signed by the given public key" in result.stderr


def test_the_offline_canonical_form_matches_rfc8785_on_awkward_text():
    import importlib.util

    import rfc8785

    spec = importlib.util.spec_from_file_location("verify_export", VERIFIER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    value = {"\U0001f600": 1, "\ufb01": 2, "a": ["\x00\x1f\x7f", "\u2028", '"\\', None, True, -(2**53 - 1)],
             "é": {"z": {}, "": []}}
    assert module.canonical_json(value).encode() == rfc8785.dumps(value)


def test_a_chunk_size_below_one_is_refused(db, tmp_path):
    from core.errors import InvalidInput
    from ledger.services.export import ledger_export

    with open(tmp_path / "x.jsonl", "wb") as out, pytest.raises(InvalidInput, match="chunk size is at least 1"):
        ledger_export(out=out, chunk_size=0)


# --- scoped exports ---------------------------------------------------------------------------


def _scoped_world(consortium, other):
    """Entries of ``consortium`` (one concerning alpha) around one of ``other``; a checkpoint."""
    entries = [
        entry_append(consortium=consortium, kind="transaction", body={"memo": "income"}, actor="system:test",
                     postings=[("consortium_income", Decimal("-10"), "EUR"), ("revenue_pool:q", Decimal("10"), "EUR")],
                     reference_type="revenue_pool", reference_id="q"),
        entry_append(consortium=other, kind="record", body={"memo": "other's secret"}, actor="system:test",
                     reference_type="revenue_pool", reference_id="theirs"),
        entry_append(consortium=consortium, kind="transaction", body={}, actor="system:test", participants=["alpha"],
                     postings=[("revenue_pool:q", Decimal("-4"), "EUR"), ("participant_payable:alpha", Decimal("4"), "EUR")],
                     reference_type="statement", reference_id="s-alpha"),
    ]
    checkpoint_create()
    return entries


def test_a_consortiums_export_hides_the_others_entries_and_verifies_offline(consortium, participants, tmp_path,
                                                                          public_key):
    from tests.factories import ConsortiumFactory

    entries = _scoped_world(consortium, ConsortiumFactory(slug="other"))
    out = tmp_path / "scoped.jsonl"
    call_command("export_ledger", "--out", str(out), "--consortium", consortium.slug)
    lines = out.read_bytes().splitlines()
    assert json.loads(lines[0])["scope"] == {"consortium": str(consortium.pk), "participant": None}
    assert json.loads(lines[0])["consortia"] == {str(consortium.pk): consortium.slug}
    assert lines[2] == b'{"leaf":"%s"}' % bytes(entries[1].leaf_hash).hex().encode()
    assert b"secret" not in out.read_bytes()
    checked = run_verifier(tmp_path, out, "--public-key", public_key)
    assert checked.returncode == 0, checked.stderr
    assert "3 entries (2 of the consortium shown, 1 other entries as leaf hashes)" in checked.stdout


def test_a_participants_export_shows_only_its_entries(consortium, participants, tmp_path, public_key):
    from tests.factories import ConsortiumFactory

    _scoped_world(consortium, ConsortiumFactory(slug="other"))
    out = tmp_path / "alpha.jsonl"
    call_command("export_ledger", "--out", str(out), "--consortium", consortium.slug, "--participant", "alpha")
    shown = [line for line in out.read_bytes().splitlines()[1:-1] if not line.startswith(b'{"leaf"')]
    assert len(shown) == 1 and b"participant_payable:alpha" in shown[0]
    checked = run_verifier(tmp_path, out, "--public-key", public_key)
    assert checked.returncode == 0 and "1 of participant alpha shown, 2 other entries" in checked.stdout


def test_a_hidden_leaf_in_a_full_export_is_refused(consortium, participants, tmp_path, public_key):
    from tests.factories import ConsortiumFactory

    entries = _scoped_world(consortium, ConsortiumFactory(slug="other"))
    out = tmp_path / "full.jsonl"
    call_command("export_ledger", "--out", str(out))
    lines = out.read_bytes().splitlines()
    lines[2] = b'{"leaf":"%s"}' % bytes(entries[1].leaf_hash).hex().encode()  # no scope in the header
    out.write_bytes(b"\n".join(lines) + b"\n")
    checked = run_verifier(tmp_path, out, "--public-key", public_key)
    assert checked.returncode == 1 and "entry 1" in checked.stderr


@pytest.mark.parametrize(("arguments", "message"), [
    (["--participant", "alpha"], "--participant needs --consortium"),
    (["--consortium", "nowhere"], "no consortium 'nowhere'"),
    (["--consortium", "acme", "--participant", "nobody"], "has no participant 'nobody'"),
])
def test_a_scope_that_does_not_exist_is_a_command_error(consortium, participants, tmp_path, arguments, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("export_ledger", "--out", str(tmp_path / "x.jsonl"), *arguments)
    assert not (tmp_path / "x.jsonl").exists()
