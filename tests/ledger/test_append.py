"""entry_append: the only way in: validation, chaining, idempotency, participants."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ledger import canonical, merkle
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
    return " ".join(excinfo.value.message_dict[field])


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
    with pytest.raises(ValidationError) as excinfo:
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
    with pytest.raises(ValidationError) as excinfo:
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
    with pytest.raises(ValidationError) as excinfo:
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
    with pytest.raises(ValidationError) as excinfo:
        _transaction(consortium, [("revenue_pool", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")], **overrides)
    assert expected in _messages(excinfo, field)


def test_a_participant_of_another_consortium_is_refused(consortium, participants):
    stranger = ParticipantFactory(consortium=ConsortiumFactory(), slug="stranger")
    with pytest.raises(ValidationError) as excinfo:
        _transaction(consortium, [("revenue_pool", Decimal("1"), "EUR"), ("reserve", Decimal("-1"), "EUR")],
                     participants=[stranger])
    assert "another consortium" in _messages(excinfo, "participants")
    with pytest.raises(ValidationError):
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
    assert "was used for entry 0" in _messages(excinfo, "idempotency_key")
    assert isinstance(excinfo.value, ValidationError)


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
    from ledger.services import append

    def columns(model):
        return {f.column for f in model._meta.concrete_fields if f.column}

    assert set(append.ENTRY_COLUMNS) == columns(LedgerEntry)
    assert set(append.POSTING_COLUMNS) == columns(Posting)
    assert set(append.PARTICIPANT_COLUMNS) == columns(LedgerEntryParticipant)
    assert set(append.NODE_COLUMNS) == columns(LedgerNode)
