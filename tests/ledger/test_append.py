"""entry_append: the only way in: validation, chaining, idempotency, participants."""

import hashlib
import re
from decimal import Decimal

import pytest

from core.errors import Conflict, InvalidInput
from ledger import canonical, columns, merkle
from ledger.models import LedgerEntry, LedgerHead, LedgerNode, Posting
from ledger.services import IdempotencyKeyReused, entry_append, tree_root
from tests.factories import ConsortiumFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


def _transaction(consortium, postings, **overrides):
    arguments = dict(
        consortium=consortium, kind="transaction", body={"memo": "t"}, postings=postings, actor="system:test",
        reference_type="statement", reference_id="st-1",
    )
    arguments.update(overrides)
    return entry_append(**arguments)


def _messages(excinfo, field="postings"):
    """Every message the InvalidInput carries for ``field``."""
    error = excinfo.value
    assert isinstance(error, InvalidInput)
    if error.errors is not None:
        assert error.field in error.errors and error.message == error.errors[error.field][0]
        return " ".join(error.errors[field])
    assert error.field == field, f"the error names {error.field!r}, not {field!r}: {error.message}"
    return error.message


def test_it_appends_a_balanced_transaction_with_its_postings(consortium, participants):
    entry = _transaction(consortium, [
        ("revenue_pool", Decimal("-10.00"), "EUR"),
        ("participant_payable:alpha", Decimal("7.50"), "EUR"),
        ("participant_payable:beta", Decimal("2.50"), "EUR"),
    ])
    assert entry.seq == 0
    stored = Posting.objects.filter(entry=entry).order_by("line")
    assert [(p.account, p.amount, p.currency) for p in stored] == [
        ("revenue_pool", Decimal("-10.00"), "EUR"),
        ("participant_payable:alpha", Decimal("7.50"), "EUR"),
        ("participant_payable:beta", Decimal("2.50"), "EUR"),
    ]
    assert sorted(entry.participants.values_list("slug", flat=True)) == ["alpha", "beta"]
    assert entry.document["postings"][1] == {"account": "participant_payable:alpha", "amount": "7.50", "currency": "EUR"}


def test_each_entry_links_to_the_previous_one_and_sequence_numbers_have_no_gap(consortium, receipt):
    entries = [receipt(consortium) for _ in range(5)]
    assert [e.seq for e in entries] == [0, 1, 2, 3, 4]
    stored = list(LedgerEntry.objects.order_by("seq"))
    assert bytes(stored[0].prev_hash) == canonical.GENESIS_PREV
    for previous, current in zip(stored, stored[1:], strict=False):
        assert bytes(current.prev_hash) == bytes(previous.leaf_hash)
        assert current.document["prev"] == bytes(previous.leaf_hash).hex()
    for entry in stored:
        assert bytes(entry.leaf_hash) == merkle.leaf_hash(bytes(entry.canonical))
        assert canonical.canonical_bytes(entry.document) == bytes(entry.canonical)


def test_the_head_and_the_stored_nodes_give_the_merkle_root(consortium, receipt):
    entries = [receipt(consortium) for _ in range(11)]
    leaves = [bytes(e.leaf_hash) for e in entries]
    head = LedgerHead.objects.get()
    assert head.size == 11 and bytes(head.last_hash) == leaves[-1]
    assert tree_root(size=11) == merkle.root(leaves)
    assert LedgerNode.objects.count() == 11 + 5 + 2 + 1


def test_unbalanced_postings_say_by_how_much_per_currency(consortium):
    with pytest.raises(InvalidInput) as excinfo:
        _transaction(consortium, [
            ("consortium_income", Decimal("-100.00"), "EUR"),
            ("revenue_pool", Decimal("99.99"), "EUR"),
            ("consortium_income", Decimal("-5"), "USD"),
            ("revenue_pool", Decimal("8"), "USD"),
        ])
    message = _messages(excinfo)
    assert "do not balance" in message and "EUR by -0.01" in message and "USD by +3.00" in message
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    ("postings", "expected"),
    [
        ([("revenue_pool", Decimal("1"), "EUR")], "at least two postings"),
        ([("revenue_pool", Decimal("1"), "XYZ"), ("reserve", Decimal("-1"), "XYZ")], "not an ISO 4217"),
        ([("revenue_pool", Decimal("1.005"), "EUR"), ("reserve", Decimal("-1.005"), "EUR")], "more decimals"),
        ([("revenue_pool", Decimal("1.5"), "JPY"), ("reserve", Decimal("-1.5"), "JPY")], "more decimals"),
        ([("revenue_pool", 1.5, "EUR"), ("reserve", Decimal("-1.5"), "EUR")], "Decimal, not float"),
        ([("revenue_pool", Decimal("0"), "EUR"), ("reserve", Decimal("0"), "EUR")], "zero moves nothing"),
        ([("cash", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")], "unknown account type"),
        ([("participant_payable", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")], "names its participant"),
        ([("revenue_pool", Decimal("NaN"), "EUR"), ("reserve", Decimal("1"), "EUR")], "not a finite number"),
        ([("revenue_pool", Decimal("1E+16"), "EUR"), ("reserve", Decimal("-1E+16"), "EUR")], "beyond the ledger"),
        ([{"account": "revenue_pool", "amount": Decimal("1")}, ("reserve", Decimal("-1"), "EUR")], "keys account"),
    ],
)
def test_bad_postings_are_refused_with_a_clear_message(consortium, participants, postings, expected):
    with pytest.raises(InvalidInput) as excinfo:
        _transaction(consortium, postings)
    assert expected in _messages(excinfo)


def test_three_decimal_currencies_and_zero_decimal_currencies_are_exact(consortium):
    entry = _transaction(consortium, [("revenue_pool", Decimal("1.250"), "BHD"), ("reserve", Decimal("-1.25"), "BHD"),
                                      ("revenue_pool", 500, "JPY"), ("reserve", -500, "JPY")])
    assert [p["amount"] for p in entry.document["postings"]] == ["1.250", "-1.250", "500", "-500"]


def test_a_record_has_no_postings(consortium):
    entry = entry_append(consortium=consortium, kind="record", body={"digest": "ab" * 32}, actor="system:test",
                         reference_type="valuation_run", reference_id="42")
    assert entry.document["postings"] == [] and not Posting.objects.exists()
    with pytest.raises(InvalidInput) as excinfo:
        entry_append(consortium=consortium, kind="record", body={}, actor="x", reference_type="policy",
                     reference_id="p", postings=[("revenue_pool", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")])
    assert "A record has no postings" in _messages(excinfo)


@pytest.mark.parametrize(
    ("overrides", "field", "expected"),
    [
        ({"kind": "memo"}, "kind", "Unknown kind"),
        ({"reference_type": "invoice"}, "reference_type", "Unknown reference type"),
        ({"reference_id": ""}, "reference_id", "reference id"),
        ({"body": {"rate": 0.1}}, "body", "floats are not allowed"),
        ({"body": {"n": 2**60}}, "body", "beyond"),
        ({"body": ["not", "an", "object"]}, "body", "JSON object"),
        ({"body": {"when": Decimal("1")}}, "body", "not a JSON value"),
        ({"idempotency_key": "has space"}, "idempotency_key", "printable"),
        ({"actor": ""}, "actor", "actor"),
        ({"participants": ["nobody"]}, "participants", "Not participants of acme: nobody"),
    ],
)
def test_bad_entries_are_refused(consortium, participants, overrides, field, expected):
    with pytest.raises(InvalidInput) as excinfo:
        _transaction(consortium, [("revenue_pool", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")], **overrides)
    assert expected in _messages(excinfo, field)


def test_a_participant_of_another_consortium_is_refused(consortium, participants):
    stranger = ParticipantFactory(consortium=ConsortiumFactory(), slug="stranger")
    with pytest.raises(InvalidInput) as excinfo:
        _transaction(consortium, [("revenue_pool", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")],
                     participants=[stranger])
    assert "another consortium" in _messages(excinfo, "participants")
    with pytest.raises(InvalidInput, match="Not participants of acme: stranger"):
        _transaction(consortium, [("paid:stranger", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")])


def test_participants_named_by_accounts_are_added_to_those_given(consortium, participants):
    entry = _transaction(consortium, [("participant_payable:beta", Decimal("1"), "EUR"), ("revenue_pool", Decimal("-1"), "EUR")],
                         participants=[participants[2]])
    assert entry.document["participants"] == ["beta", "gamma"]


def test_a_repeated_idempotency_key_returns_the_existing_entry(consortium, receipt):
    first = receipt(consortium, idempotency_key="pool-1:receipt")
    again = receipt(consortium, idempotency_key="pool-1:receipt")
    assert again.seq == first.seq and LedgerEntry.objects.count() == 1


def test_a_repeated_idempotency_key_with_a_different_body_is_an_error(consortium, receipt):
    receipt(consortium, amount="100.00", idempotency_key="pool-1:receipt")
    with pytest.raises(IdempotencyKeyReused) as excinfo:
        receipt(consortium, amount="100.01", idempotency_key="pool-1:receipt")
    error = excinfo.value
    assert isinstance(error, Conflict) and error.status_code == 409
    assert error.field == "idempotency_key" and "was used for entry 0" in error.message


def test_enum_members_are_stored_as_their_values(consortium):
    from ledger.models import EntryKind, ReferenceType

    entry = entry_append(consortium=consortium, kind=EntryKind.RECORD, body={}, actor="x",
                         reference_type=ReferenceType.POLICY, reference_id="default")
    assert entry.document["kind"] == "record" and entry.document["reference"]["type"] == "policy"


def test_unicode_bodies_are_hashed_in_canonical_form(consortium):
    body = {"z": 1, "é": "ü\u2028\U0001f600", "a": [True, None, "\x00"]}
    entry = entry_append(consortium=consortium, kind="record", body=body, actor="x", reference_type="policy",
                         reference_id="p")
    stored = LedgerEntry.objects.get(seq=entry.seq)
    assert stored.body == body
    assert bytes(stored.canonical).index(b'"a"') < bytes(stored.canonical).index(b'"z"')


def test_an_actor_principal_is_recorded_by_its_label(consortium, member):
    from consortium.access import Principal

    user = member("finance")
    entry = entry_append(consortium=consortium, kind="record", body={}, actor=Principal(user=user),
                         reference_type="policy", reference_id="p")
    assert entry.actor == f"user:{user.get_username()}"


def test_a_missing_head_with_entries_refuses_to_start_a_second_chain(consortium, receipt):
    from ledger.services import LedgerCorrupt
    from tests.ledger.tampering import tamper

    receipt(consortium)
    tamper("DELETE FROM ledger_head")
    with pytest.raises(LedgerCorrupt, match="refusing to start a second chain"):
        receipt(consortium)


def test_the_hand_written_inserts_name_every_column_of_the_models():
    from ledger.models import LedgerEntryParticipant

    def model_columns(model):
        return {f.column for f in model._meta.concrete_fields if f.column}

    assert set(columns.ENTRY_COLUMNS) == model_columns(LedgerEntry)
    assert set(columns.POSTING_COLUMNS) == model_columns(Posting)
    assert set(columns.PARTICIPANT_COLUMNS) == model_columns(LedgerEntryParticipant)
    assert set(columns.NODE_COLUMNS) == model_columns(LedgerNode)


def test_append_and_verify_share_the_column_lists():
    from ledger.services import append, verify

    assert append.ENTRY_COLUMNS is columns.ENTRY_COLUMNS and verify.ENTRY_COLUMNS is columns.ENTRY_COLUMNS
    assert (append.POSTING_COLUMNS, append.PARTICIPANT_COLUMNS, append.NODE_COLUMNS) == (
        columns.POSTING_COLUMNS, columns.PARTICIPANT_COLUMNS, columns.NODE_COLUMNS)


def _sql_inserts(text: str) -> dict[str, list[tuple[str, ...]]]:
    """table -> the column list of every ``INSERT INTO table (...)`` in ``text``."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for table, names in re.findall(r"INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)", text):
        found.setdefault(table, []).append(tuple(name.strip() for name in names.split(",")))
    return found


def test_the_newest_sql_function_inserts_exactly_the_shared_column_lists():
    from ledger.sql import sql_text, versions

    inserts = _sql_inserts(sql_text(versions("append")[-1]))
    expected = {
        "ledger_entry": columns.ENTRY_COLUMNS, "ledger_posting": columns.POSTING_COLUMNS,
        "ledger_entry_participant": columns.PARTICIPANT_COLUMNS, "ledger_node": columns.NODE_COLUMNS,
    }
    for table, names in expected.items():
        assert inserts.get(table), f"the function no longer inserts into {table}"
        assert set(inserts[table]) == {names}, table
    assert set(inserts) == {*expected, "ledger_head"}  # and the head row, on the first append


# Released SQL files are immutable (migrations replay them): a change is a new file plus a
# migration that loads it. Add a new file's hash here when it is released; never change one.
RELEASED_SQL = {
    "append_v1.sql": "6d860ce53505039fd4af5bc35e62343bedabeb117964200b4b5689c0dd1075b3",
    "append_v2.sql": "d787399c63557526c8024cc53470df53c845a2bf7ad96d4ab6fd6dfaa7a84ce5",
    "append_many_v1.sql": "5afed726923b18f876fc9b137904a8fa3c356ffc5b9dd45312c5af1b3f3d7a05",
}


def test_released_sql_files_are_never_edited():
    from ledger.sql import DIRECTORY

    present = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in DIRECTORY.glob("*.sql")}
    assert present == RELEASED_SQL


def test_the_migrations_load_the_sql_files_and_unapplying_0004_restores_version_1():
    import importlib

    from ledger.sql import sql_text, versions

    assert versions("append") == ["append_v1.sql", "append_v2.sql"]
    v3 = importlib.import_module("ledger.migrations.0003_append_function")
    v4 = importlib.import_module("ledger.migrations.0004_append_without_foreign_keys")
    assert v3.FUNCTION == sql_text("append_v1.sql")
    assert (v4.FUNCTION, v4.PREVIOUS_FUNCTION) == (sql_text("append_v2.sql"), sql_text("append_v1.sql"))


@pytest.mark.postgres
def test_the_database_runs_the_newest_sql_file():
    from django.db import connection

    from ledger.sql import sql_text, versions

    body = sql_text(versions("append")[-1]).split("$$")[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'fairshare_ledger_append'")
        assert [row[0] for row in cursor.fetchall()] == [body]
