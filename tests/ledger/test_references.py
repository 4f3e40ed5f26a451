"""What ledger entries refer to cannot be taken from under them.

The ledger tables carry no foreign-key constraints: their checks would run at COMMIT while
the append holds the chain head (ledger/models.py). Migration 0004 guards the referenced
consortium and participant rows instead; each test here tries to get past that guard.
"""

import threading
import uuid

import pytest
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import ProtectedError

from consortium.models import Consortium, Participant
from core.errors import InvalidInput
from ledger.models import LedgerEntry
from ledger.services import entry_append
from tests.factories import ParticipantFactory

pytestmark = pytest.mark.django_db


def _payout(consortium, slug):
    from decimal import Decimal

    return entry_append(
        consortium=consortium, kind="transaction", body={}, actor="system:test", reference_type="statement",
        reference_id="s-1", postings=[("revenue_pool", Decimal("-5.00"), "EUR"), (f"paid:{slug}", Decimal("5.00"), "EUR")],
    )


def _raw_delete(table, pk):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [Participant._meta.pk.get_db_prep_value(pk, connection)])


def test_a_participant_that_entries_concern_cannot_be_deleted_even_with_raw_sql(consortium, participants):
    alpha = participants[0]
    _payout(consortium, "alpha")
    with pytest.raises(ProtectedError):
        alpha.delete()
    with pytest.raises(IntegrityError, match="ledger entries refer to it"):
        _raw_delete("consortium_participant", alpha.pk)
    assert Participant.objects.filter(pk=alpha.pk).exists()


def test_a_participant_no_entry_concerns_can_still_be_deleted(consortium, participants):
    _payout(consortium, "alpha")
    spare = ParticipantFactory(consortium=consortium, slug="spare")
    _raw_delete("consortium_participant", spare.pk)
    assert not Participant.objects.filter(pk=spare.pk).exists()


def test_a_consortium_with_entries_cannot_be_deleted_even_with_raw_sql(consortium, receipt):
    receipt(consortium)
    with pytest.raises(ProtectedError):
        consortium.delete()
    with pytest.raises(IntegrityError, match="ledger entries refer to it"):
        _raw_delete("consortium_consortium", consortium.pk)
    assert Consortium.objects.filter(pk=consortium.pk).exists()


@pytest.mark.postgres
def test_the_referenced_tables_cannot_be_truncated_while_the_ledger_has_entries(consortium, receipt):
    receipt(consortium)
    for table in ("consortium_participant", "consortium_consortium"):
        with pytest.raises(IntegrityError, match="cannot be emptied"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {table} CASCADE")
    assert LedgerEntry.objects.count() == 1


def test_an_append_for_a_consortium_that_is_gone_is_refused(db):
    ghost = Consortium(pk=uuid.uuid4(), slug="ghost", name="Ghost")  # never saved
    with pytest.raises(InvalidInput, match="ghost no longer exists") as excinfo, transaction.atomic():
        _payout(ghost, "alpha")
    assert excinfo.value.field == "consortium"
    assert LedgerEntry.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_a_refused_append_the_connection_is_usable_and_no_transaction_is_left_open(consortium, participants):
    assert connection.get_autocommit()  # the one-round-trip path, with its own BEGIN
    with pytest.raises(InvalidInput, match="nobody") as excinfo:
        _payout(consortium, "nobody")
    assert excinfo.value.field == "participants"
    assert connection.connection.get_transaction_status() == 0  # idle: the BEGIN was rolled back
    assert _payout(consortium, "alpha").seq == 0  # and the next append works


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delete_waits_for_an_append_in_flight_and_is_then_refused(consortium, participants):
    """The append locks its participant rows FOR KEY SHARE before the head: a concurrent
    DELETE of one of them blocks until the append commits, then the guard sees the entry."""
    alpha = participants[0]
    appended, outcome = threading.Event(), {}

    def delete_alpha():
        appended.wait(10)
        try:
            _raw_delete("consortium_participant", alpha.pk)
            outcome["deleted"] = True
        except DatabaseError as exc:
            outcome["error"] = str(exc)
        finally:
            connections.close_all()

    deleter = threading.Thread(target=delete_alpha)
    deleter.start()
    with transaction.atomic():
        _payout(consortium, "alpha")
        appended.set()
        deleter.join(0.5)
        assert deleter.is_alive()  # blocked on the append's KEY SHARE lock
    deleter.join(10)
    assert "deleted" not in outcome and "ledger entries refer to it" in outcome["error"]
    assert Participant.objects.filter(pk=alpha.pk).exists()


@pytest.mark.postgres
def test_a_guard_left_disabled_is_reported_by_verify(consortium, receipt):
    from ledger.services.verify import ledger_verify

    receipt(consortium)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE consortium_participant DISABLE TRIGGER consortium_participant_ledger_referenced")
    report = ledger_verify()
    assert not report.ok and "consortium_participant_ledger_referenced" in str(report.problem)
