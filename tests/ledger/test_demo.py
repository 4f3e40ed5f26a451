"""The demo ledger content, and test-database flushes around committed ledger rows."""

import pytest
from django.core.management import call_command

from consortium.audit import system_principal
from ledger.demo import DEMO_POOL_REFERENCE, ledger_demo_seed
from ledger.models import Checkpoint, LedgerEntry
from ledger.services.verify import ledger_verify


@pytest.mark.django_db
def test_the_demo_seed_records_the_pool_announcement_and_a_checkpoint_once(consortium, capsys):
    ledger_demo_seed(consortium=consortium, actor=system_principal())
    ledger_demo_seed(consortium=consortium, actor=system_principal())
    entry = LedgerEntry.objects.get()
    # A record, no postings: the pool's own funding entry moves the money when it is issued,
    # so a receipt here would fund the period twice (into an account no pool distributes).
    assert entry.kind == "record" and entry.document["postings"] == []
    assert (entry.reference_type, entry.reference_id) == ("revenue_pool", DEMO_POOL_REFERENCE)
    assert entry.document["body"]["pool"] == DEMO_POOL_REFERENCE
    assert entry.document["body"]["amount"] == "250000.00" and entry.document["body"]["currency"] == "EUR"
    assert entry.actor == "system:operator-command"
    assert Checkpoint.objects.get().tree_size == 1
    call_command("verify_ledger")
    assert "ledger intact: 1 entries" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_committing_test_can_be_flushed_afterwards(consortium):
    # Its teardown flushes every table: TRUNCATE on PostgreSQL, DELETE on SQLite. Both pass
    # only through the flush permit that tests/ledger/conftest.py installs.
    ledger_demo_seed(consortium=consortium, actor="system:test")
    assert LedgerEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_after_a_flush_the_ledger_starts_again_from_entry_zero(consortium):
    ledger_demo_seed(consortium=consortium, actor="system:test")
    assert list(LedgerEntry.objects.values_list("seq", flat=True)) == [0]
    assert ledger_verify().ok


def test_the_suite_flushes_under_the_ledger_permit():
    from django.db.backends.base.operations import BaseDatabaseOperations

    assert BaseDatabaseOperations.execute_sql_flush.permits_ledger_truncate
