"""Concurrent appenders on real PostgreSQL: the head lock keeps one chain with no gap.

These tests commit (``transaction=True``), so their teardown flushes the database with
TRUNCATE, which also exercises the test-flush permit of ledger/testing.py.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connections

from ledger import canonical
from ledger.models import LedgerEntry
from ledger.services import entry_append
from ledger.services.verify import ledger_verify
from tests.factories import ConsortiumFactory

WRITERS = 8
PER_WRITER = 15


def _run_writers(target) -> list[BaseException]:
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(number):
        try:
            barrier.wait()
            target(number)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_appenders_never_fork_nor_leave_a_gap():
    consortium = ConsortiumFactory(slug="busy")

    def append_many(number):
        for i in range(PER_WRITER):
            entry_append(
                consortium=consortium, kind="transaction", body={"writer": number, "i": i}, actor=f"writer-{number}",
                reference_type="revenue_pool", reference_id=f"w{number}",
                postings=[("consortium_income", Decimal("-1.00"), "EUR"), ("revenue_pool", Decimal("1.00"), "EUR")],
            )

    assert _run_writers(append_many) == []
    rows = list(LedgerEntry.objects.order_by("seq").values_list("seq", "prev_hash", "leaf_hash"))
    assert [seq for seq, _, _ in rows] == list(range(WRITERS * PER_WRITER))  # no gap
    previous = canonical.GENESIS_PREV
    for _, prev_hash, leaf_hash in rows:  # no fork: every entry links to the one before
        assert bytes(prev_hash) == previous
        previous = bytes(leaf_hash)
    assert len({bytes(prev) for _, prev, _ in rows}) == len(rows)
    report = ledger_verify()
    assert report.ok, report.problem


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_make_one_entry():
    consortium = ConsortiumFactory(slug="retry")
    seqs = []

    def retry(number):
        entry = entry_append(
            consortium=consortium, kind="record", body={"digest": "cafe"}, actor="coordinator",
            reference_type="valuation_run", reference_id="9", idempotency_key="valuation-run-9",
        )
        seqs.append(entry.seq)

    assert _run_writers(retry) == []
    assert seqs == [0] * WRITERS and LedgerEntry.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_append_commits_asynchronously_then_flushes_before_returning(consortium, receipt):
    """The head lock is not held across an fsync: the append's transaction commits with
    synchronous_commit off, and entry_append returns only after a synchronous flush."""
    from django.db import connection, transaction

    executed = []

    def spy(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        with transaction.atomic():
            receipt(consortium)
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                assert cursor.fetchone()[0] == "off"  # for this transaction only
            assert not any("pg_current_xact_id" in sql for sql in executed)  # not before COMMIT
        assert "pg_current_xact_id" in executed[-1]  # the flush right after COMMIT
        receipt(consortium, amount="5.00")  # autocommit: flushed before returning too
        assert "pg_current_xact_id" in executed[-1]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"  # the session's own setting is untouched
