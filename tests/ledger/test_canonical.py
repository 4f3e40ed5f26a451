"""The bytes an entry is: RFC 8785 everywhere, however they are built or checked."""

import datetime as dt
import json
import uuid

import pytest
import rfc8785
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consortium.models import Consortium
from ledger import canonical
from ledger.services.draft import entry_draft

json_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1) | json_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=20,
)
bodies = st.dictionaries(json_text, json_values, max_size=6)


@hypothesis_settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_property_the_fast_canonical_form_and_check_agree_with_rfc8785(value):
    data = rfc8785.dumps(value)
    assert canonical.canonical_bytes(value) == data
    assert canonical.is_canonical(data, canonical.document_parse_strict(data))
    spaced = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
    if spaced != data:
        assert not canonical.is_canonical(spaced, value)


CONSORTIUM = Consortium(pk=uuid.UUID(int=7), slug="acme", name="Acme")  # drafts need no database


@hypothesis_settings(max_examples=100, deadline=None)
@given(body=bodies, seq=st.integers(min_value=0, max_value=10**12), prev=st.binary(min_size=32, max_size=32))
def test_property_splicing_the_chain_values_gives_the_canonical_bytes(body, seq, prev):
    draft = entry_draft(
        consortium=CONSORTIUM, kind="record", body=body, postings=None, actor="user:é@example.test",
        reference_type="dispute", reference_id="d-1", participants=(), idempotency_key=None,
    )
    moment = dt.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    spliced = draft.canonical_at(seq=seq, prev_hash=prev, time_text=canonical.format_time(moment))
    assert spliced == rfc8785.dumps(draft.document(seq=seq, prev_hash=prev, time=moment))


def test_floats_and_non_json_values_never_enter_an_entry():
    with pytest.raises(canonical.InvalidBody):
        canonical.document_parse_strict(b'{"a":1.5}')
    with pytest.raises(canonical.InvalidBody):
        canonical.document_parse_strict(b'{"a":NaN}')
    with pytest.raises(canonical.InvalidBody, match="unpaired surrogate"):
        canonical.check_json_value({"a": "\ud800"})


def test_times_are_utc_with_microseconds():
    moment = dt.datetime(2026, 3, 1, 13, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert canonical.format_time(moment) == "2026-03-01T12:00:00.000000Z"
    assert canonical.parse_time("2026-03-01T12:00:00.000000Z") == moment
    with pytest.raises(ValueError):
        canonical.format_time(dt.datetime(2026, 3, 1))
