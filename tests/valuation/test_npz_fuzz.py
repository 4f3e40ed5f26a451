"""Property tests of upload validation: any byte string gets the arrays or a client error.

Valid archives (every accepted dtype in both byte orders, ranks 0 to 3, stored and
compressed) parse and round-trip; damaged ones (bytes flipped, inserted, deleted, truncated;
zip fields, deflate streams and .npy headers corrupted) are accepted intact or refused with
``InvalidInput``/``TooLarge``, never with another exception and never by the last resort.
A fixed set of examples (``derandomize=True``); a large run::

    FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/valuation/test_npz_fuzz.py -q -p no:cacheprovider \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import struct
import zipfile

import numpy as np
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, from_dtype

from tests.valuation.npz_archives import (
    CENTRAL,
    FUZZ,
    LOCAL,
    LOGISTIC,
    ORDERED_DTYPES,
    get_field,
    layout,
    logistic,
    npy_raw,
    outcome,
    record,
    refused,
    save,
    set_field,
    zip_of,
)
from valuation.npz import ACCEPTED_DTYPES
from valuation.spec import MAX_NDIM, ArraySpec

# -- (a) valid archives parse and round-trip ---------------------------------------------

NAMES = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"), blacklist_characters="/\\"),
    min_size=1, max_size=12,
).filter(lambda name: name.isprintable() and name not in ("file", "allow_pickle"))


@st.composite
def valid_arrays(draw, max_side: int = 4) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(ORDERED_DTYPES)))
    shape = draw(array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=max_side))
    native = dtype.newbyteorder("=")
    values = draw(arrays(native, shape, elements=from_dtype(native, allow_nan=False, allow_infinity=False)))
    array = values.astype(dtype)
    if array.ndim >= 2 and draw(st.booleans()):
        array = np.asfortranarray(array)
    return array


@st.composite
def valid_archives(draw, max_arrays: int = 3) -> tuple[bytes, dict[str, np.ndarray], bool]:
    names = draw(st.lists(NAMES, min_size=1, max_size=max_arrays, unique=True))
    contents = {name: draw(valid_arrays()) for name in names}
    compressed = draw(st.booleans())
    return save(compressed, **contents), contents, compressed


@FUZZ
@given(archive=valid_archives())
def test_valid_archives_parse_and_round_trip(archive):
    data, contents, compressed = archive
    spec = [ArraySpec(name, array.shape, array.dtype.str) for name, array in contents.items()]
    kind, arrays = outcome(data, spec)
    assert kind == "accepted", arrays.message
    for name, array in contents.items():
        assert arrays[name].dtype == array.dtype  # byte order included
        np.testing.assert_array_equal(arrays[name], array)
    event(f"accepted, {'compressed' if compressed else 'stored'}")


# -- (b) damaged archives: the arrays or a client error, nothing else ----------------------

BYTE_DAMAGE = ("flip", "set", "insert", "delete", "truncate")


@FUZZ
@given(archive=valid_archives(max_arrays=2), data=st.data())
def test_archives_with_bytes_flipped_inserted_deleted_or_cut_are_accepted_or_refused(archive, data):
    damaged = bytearray(archive[0])
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        kind = data.draw(st.sampled_from(BYTE_DAMAGE), label="damage")
        at = data.draw(st.integers(0, max(len(damaged) - 1, 0)), label="offset")
        if kind == "flip" and damaged:
            damaged[at] ^= data.draw(st.integers(1, 255), label="mask")
        elif kind == "set" and damaged:
            damaged[at] = data.draw(st.integers(0, 255), label="value")
        elif kind == "insert":
            damaged[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        elif kind == "delete":
            del damaged[at:at + data.draw(st.integers(1, 8), label="deleted")]
        elif kind == "truncate":
            del damaged[at:]
    record(*outcome(bytes(damaged)))


ZIP_FIELDS = [("local", field) for field in LOCAL] + [("central", field) for field in CENTRAL]
FLAG_BITS = (0x1, 0x8, 0x20, 0x40, 0x800, 0x2000)


@FUZZ
@given(archive=valid_archives(max_arrays=2), data=st.data())
def test_archives_with_damaged_zip_fields_are_accepted_or_refused(archive, data):
    damaged = archive[0]
    entries = layout(damaged)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        entry = data.draw(st.sampled_from(entries), label="member")
        where, field = data.draw(st.sampled_from(ZIP_FIELDS), label="field")
        fmt = (LOCAL if where == "local" else CENTRAL)[field][1]
        top = (1 << (8 * struct.calcsize(fmt))) - 1
        current = get_field(damaged, entry, where, field)
        if field == "flags":
            value = current ^ data.draw(st.sampled_from(FLAG_BITS) | st.integers(0, top), label="bits")
        elif field == "method":
            value = data.draw(st.sampled_from([0, 8, 12, 14, 93, 99]) | st.integers(0, top), label="method")
        else:  # sizes, offsets, lengths, crc: a near miss or anything
            value = data.draw(st.integers(-3, 3).map(lambda d: current + d) | st.integers(0, top), label="value")
        damaged = set_field(damaged, entry, where, field, min(max(value, 0), top))
        event(f"damaged {where} {field}")
    record(*outcome(damaged))


@FUZZ
@given(array=valid_arrays(max_side=12), data=st.data())
def test_archives_with_corrupt_deflate_streams_are_accepted_or_refused(array, data):
    archive = save(True, w=array)
    (entry,) = layout(archive)
    span = entry.end - entry.data
    where = data.draw(st.sampled_from(["after the .npy header", "start", "anywhere"]), label="where")
    low, high = {"start": (0, min(span, 8)), "after the .npy header": (min(span - 1, span // 2), span),
                 "anywhere": (0, span)}[where]
    damaged = bytearray(archive)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        at = entry.data + data.draw(st.integers(low, max(low, high - 1)), label="offset")
        damaged[at] ^= data.draw(st.integers(1, 255), label="mask")
    kind, result = outcome(bytes(damaged))
    event(f"corrupt deflate {where}")
    record(kind, result)


ODD_DESCRS = [
    "=f8", "|f8", "<f16", ">c32", "<f3", "<i16", "|O", "O", "|V8", "<U3", "|S3", "<M8[s]", "<m8[s]", "xyz", "",
]
HEADER_VALUES = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)


def mostly(draw, usual, odd):
    """``usual`` three times in four, ``odd`` otherwise: each field is wrong now and then."""
    return draw(odd if draw(st.integers(0, 3)) == 3 else usual)


@st.composite
def npy_headers(draw) -> tuple[str, int]:
    """A .npy header dict literal (often valid, often not in one or several ways) and the
    number of data bytes it promises (0 if it promises nothing sensible)."""
    descr = mostly(
        draw,
        st.sampled_from(ORDERED_DTYPES),
        st.sampled_from(ODD_DESCRS)
        | st.text(max_size=8)
        | st.lists(st.tuples(st.text(max_size=3), st.sampled_from(["<f8", "|O", "<i4"])), max_size=2)
        | st.tuples(st.sampled_from(["<f8", "|u1"]), st.tuples(st.integers(0, 3)))
        | HEADER_VALUES,
    )
    shape = mostly(
        draw,
        st.lists(st.integers(0, 4), max_size=3).map(tuple),
        st.lists(st.integers(-2, 2**66), max_size=MAX_NDIM + 2).map(tuple)
        | st.lists(st.integers(0, 4), max_size=3)
        | st.tuples(st.booleans())
        | HEADER_VALUES,
    )
    fields = {"descr": descr, "fortran_order": mostly(draw, st.booleans(), HEADER_VALUES), "shape": shape}
    if draw(st.integers(0, 9)) == 9:
        fields.pop(draw(st.sampled_from(sorted(fields))))
    if draw(st.integers(0, 9)) == 9:
        fields[draw(st.text(max_size=5))] = draw(HEADER_VALUES)
    text = repr(fields)
    if draw(st.integers(0, 9)) == 9:  # not even a literal any more
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(min_size=1, max_size=4)) + text[at:]
    promised = 0
    if isinstance(descr, str) and descr in ACCEPTED_DTYPES and isinstance(shape, tuple):
        if all(type(n) is int and 0 <= n <= 8 for n in shape):
            promised = int(np.prod(shape, dtype=np.int64)) * np.dtype(descr).itemsize
    return text, promised


@FUZZ
@given(header=npy_headers(), data=st.data())
def test_archives_with_odd_npy_headers_are_accepted_or_refused(header, data):
    """The zip layer intact (CRC and sizes right), only the .npy header and its data odd."""
    text, promised = header
    length = mostly(data.draw, st.just(promised), st.integers(0, 64) | st.integers(-3, 3).map(lambda d: promised + d))
    payload = data.draw(st.binary(min_size=max(length, 0), max_size=max(length, 0)), label="payload")
    version = mostly(data.draw, st.sampled_from([(1, 0), (2, 0)]), st.sampled_from([(3, 0), (0, 1), (2, 1)]))
    method = data.draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]), label="method")
    record(*outcome(zip_of([("a.npy", npy_raw(text, payload, version))], method)))


def test_every_single_byte_change_of_an_archive_is_accepted_or_refused():
    for compressed in (False, True):
        archive = logistic(compressed)
        for at in range(len(archive)):
            for damaged in (
                archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1:],
                archive[:at] + bytes([archive[at] ^ 0x01]) + archive[at + 1:],
                archive[:at] + archive[at + 1:],
                archive[:at] + b"\x00" + archive[at:],
            ):
                outcome(damaged, LOGISTIC)


def test_every_truncation_of_an_archive_is_refused():
    for compressed in (False, True):
        archive = logistic(compressed)
        assert outcome(archive, LOGISTIC)[0] == "accepted"
        for length in range(len(archive)):
            refused(archive[:length])


