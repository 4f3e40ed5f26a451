"""The two append paths write the same ledger, byte for byte.

On PostgreSQL the locked part of ``entry_append`` is the SQL function of the newest
ledger/sql/append_v*.sql; elsewhere (SQLite) the same steps run in Python. Here one set of
entries goes through the function (some in autocommit, sent as one round trip, some inside
a caller's transaction), and the same drafts go, in a fresh process on a fresh SQLite
database with the same consortium and participants, through the Python path at the same
times. Every canonical byte, leaf hash, Merkle node, root and the head must be equal.
"""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection, transaction

from ledger.models import LedgerEntry
from ledger.services import entry_append
from tests.conftest import TEST_LEDGER_SIGNING_KEY
from tests.ledger.snapshot import ledger_snapshot

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
# Variables the SQLite process must not inherit from the test run (as in tests/config/test_settings.py).
SERVICE_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DEBUG", "SECRET_KEY",
                     "LEDGER_SIGNING_KEY", "ALLOWED_HOSTS", "MEDIA_ROOT", "DJANGO_ALLOW_ASYNC_UNSAFE")


def _receipt(amount, key=None):
    return {"kind": "transaction", "body": {"memo": f"receipt {amount}"}, "actor": "system:test",
            "reference_type": "revenue_pool", "reference_id": "pool-2026-q1", "idempotency_key": key,
            "postings": [["consortium_income", f"-{amount}", "EUR"], ["revenue_pool", amount, "EUR"]]}


# JSON, so that the SQLite process gets exactly these (amounts are decimal strings).
DRAFTS = [
    _receipt("250000.00", key="pool-2026-q1:receipt-1"),
    {"kind": "transaction", "body": {"memo": "statement Q1", "lines": 4, "period": "2026-Q1"},
     "actor": "user:finance@demo.test", "reference_type": "statement", "reference_id": "st-1:alpha",
     "idempotency_key": "statement:st-1:issue", "participants": ["gamma"],
     "postings": [["revenue_pool:pool-2026-q1", "-1000.00", "EUR"], ["participant_payable:alpha", "600.00", "EUR"],
                  ["participant_payable:beta", "400.00", "EUR"], ["reserve", "-1500", "JPY"],
                  ["paid:beta", "1500", "JPY"], ["reserve:fx", "1.250", "BHD"], ["consortium_income", "-1.250", "BHD"]]},
    {"kind": "record", "body": {"é": "ü\u2028\U0001f600 \"quoted\" \\ back", "z": [True, None, "\x00", -0, 2**53 - 1],
                                "a": {"nested": {"deeper": ["日本語", ""]}}, "digest": "ab" * 32},
     "actor": "api-key:fsk_example", "reference_type": "dispute", "reference_id": "d-7", "participants": ["beta"],
     "idempotency_key": "dispute:d-7:decision"},
    {"kind": "record", "body": {}, "actor": "system:operator-command", "reference_type": "policy",
     "reference_id": "default"},
    _receipt("250000.00", key="pool-2026-q1:receipt-1"),  # a retry: the same entry, nothing new
    {"kind": "record", "body": {"run": 42, "shapley": ["0.25", "0.75"]}, "actor": "system:celery",
     "reference_type": "valuation_run", "reference_id": "42", "participants": ["alpha", "beta", "gamma"]},
    *[_receipt(f"{n}.{n:02d}") for n in range(1, 8)],
    {"kind": "transaction", "body": {"memo": "USD payout"}, "actor": "system:test", "reference_type": "statement",
     "reference_id": "st-2", "postings": [["participant_payable:gamma", "-0.01", "USD"], ["paid:gamma", "0.01", "USD"]]},
]
IN_CALLERS_TRANSACTION = range(6, 10)  # these go through the function inside an atomic block


def _arguments(draft: dict) -> dict:
    arguments = {key: value for key, value in draft.items() if key != "postings"}
    if "postings" in draft:
        arguments["postings"] = [(account, Decimal(amount), currency) for account, amount, currency in draft["postings"]]
    return arguments


# Run in a fresh interpreter: migrate a fresh SQLite database, create the same consortium and
# participants (same ids), append the same drafts at the same times, print what was written.
SQLITE_SIDE = r"""
import json, sys
from decimal import Decimal
from unittest import mock

import django
django.setup()
from django.core.management import call_command
from django.db import connection

spec = json.load(sys.stdin)
call_command("migrate", verbosity=0, interactive=False)
assert connection.vendor == "sqlite", connection.vendor

from consortium.models import Consortium, Participant
from ledger.canonical import parse_time
from ledger.services import entry_append

consortium = Consortium.objects.create(**spec["consortium"])
for participant in spec["participants"]:
    Participant.objects.create(consortium=consortium, **participant)
for draft, time_text in zip(spec["drafts"], spec["times"], strict=True):
    arguments = {key: value for key, value in draft.items() if key != "postings"}
    if "postings" in draft:
        arguments["postings"] = [(a, Decimal(amount), c) for a, amount, c in draft["postings"]]
    with mock.patch("django.utils.timezone.now", return_value=parse_time(time_text)):
        entry_append(consortium=consortium, **arguments)
from tests.ledger.snapshot import ledger_snapshot
print("RESULT " + json.dumps(ledger_snapshot()))
"""


def _sqlite_side(tmp_path, spec: dict) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES and k != "DJANGO_SETTINGS_MODULE"}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
           "LEDGER_SIGNING_KEY": TEST_LEDGER_SIGNING_KEY, "DEBUG": "1"}
    result = subprocess.run([sys.executable, "-c", SQLITE_SIDE], cwd=ROOT, env=env, input=json.dumps(spec),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_the_sql_function_and_the_python_path_write_the_same_ledger(consortium, participants, tmp_path):
    assert connection.get_autocommit()  # the one-round-trip path first
    times = []
    for position, draft in enumerate(DRAFTS):
        if position in IN_CALLERS_TRANSACTION:
            with transaction.atomic():
                entry = entry_append(consortium=consortium, **_arguments(draft))
        else:
            entry = entry_append(consortium=consortium, **_arguments(draft))
        # The function took the time from the database clock; the SQLite side must use it.
        times.append(LedgerEntry.objects.get(seq=entry.seq).document["time"])
    postgresql = ledger_snapshot()
    assert postgresql["vendor"] == "postgresql" and postgresql["verified"][0], postgresql["verified"]
    assert len(postgresql["entries"]) == len(DRAFTS) - 1  # the retry added nothing

    sqlite = _sqlite_side(tmp_path, {
        "consortium": {"id": str(consortium.pk), "slug": consortium.slug, "name": consortium.name},
        "participants": [{"id": str(p.pk), "slug": p.slug, "name": p.name} for p in participants],
        "drafts": DRAFTS,
        "times": times,
    })

    assert sqlite["vendor"] == "sqlite" and sqlite["verified"][0], sqlite["verified"]
    for mine, theirs in zip(postgresql["entries"], sqlite["entries"], strict=True):
        assert theirs["canonical"] == mine["canonical"], mine["seq"]
        assert theirs["leaf"] == mine["leaf"], mine["seq"]
        assert theirs == mine
    assert sqlite["roots"] == postgresql["roots"]
    assert sqlite["head"] == postgresql["head"]
    assert sqlite["nodes"] == postgresql["nodes"]
    assert sqlite["postings"] == postgresql["postings"]
    assert sqlite["participant_links"] == postgresql["participant_links"]
    assert sqlite == postgresql | {"vendor": "sqlite"}
