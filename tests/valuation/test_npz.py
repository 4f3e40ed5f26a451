"""Upload validation answers every byte string with the arrays or a client error (valuation/npz.py).

Three parts: property tests that valid archives (every accepted dtype in both byte orders,
ranks 0 to 3, stored and compressed) parse and round-trip; property tests and exhaustive
loops that damage valid archives (bytes flipped, inserted, deleted, truncated; zip fields,
deflate streams and .npy headers corrupted) and check that the only outcomes are the
arrays or ``InvalidInput``/``TooLarge``; and one named regression test per defect class.

A refusal must be an explicit one: ``npz.py`` turns an exception it did not foresee into
``InvalidInput`` *chained* to it (``__cause__``), and every test here fails on such a
refusal, so the last resort is never what makes a test pass.

The property tests run a fixed set of examples (``derandomize=True``). A large run::

    FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/valuation/test_npz.py -q -p no:cacheprovider \
        --hypothesis-show-statistics
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
import time
import warnings
import zipfile
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, from_dtype

from core.errors import InvalidInput, TooLarge
from valuation import npz
from valuation.npz import ACCEPTED_DTYPES, MAX_HEADER_SIZE, check_headers_against_spec, npz_inspect, npz_read
from valuation.spec import MAX_NDIM, ArraySpec
from valuation.zip_members import MAX_MEMBERS, MAX_NAME_LENGTH

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = hypothesis_settings(
    derandomize=True, database=None, deadline=None, max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMIT = 1 << 20

# -- building archives ------------------------------------------------------------------


def save(compressed: bool = False, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npy_raw(header: str, data: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """A .npy member with exactly this header text (padded to 64 bytes, as numpy does)."""
    text = header + " " * (-(len(header) + 11) % 64) + "\n"
    encoded = text.encode("utf-8")  # latin1 for the plain ASCII headers numpy writes
    length = struct.pack("<H" if version == (1, 0) else "<I", len(encoded))
    return b"\x93NUMPY" + bytes(version) + length + encoded + data


def header_text(descr, shape, fortran_order=False) -> str:
    return repr({"descr": descr, "fortran_order": fortran_order, "shape": shape})


def zip_of(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": wanted in some tests
        with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
            for name, payload in members:
                archive.writestr(name, payload)
    return buffer.getvalue()


LOGISTIC = [ArraySpec("coef", (4,), "float64"), ArraySpec("intercept", (), "float64")]


def logistic(compressed: bool = False, **changes) -> bytes:
    arrays = {"coef": np.arange(4.0), "intercept": np.float64(0.5)} | changes
    return save(compressed, **arrays)


# Offsets of the fields the tests damage, in a local header and a central directory entry.
LOCAL = {"flags": (6, "<H"), "method": (8, "<H"), "crc": (14, "<I"), "compressed_size": (18, "<I"),
         "size": (22, "<I"), "name_length": (26, "<H"), "extra_length": (28, "<H")}
CENTRAL = {"extract_version": (6, "<H"), "flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"),
           "compressed_size": (20, "<I"), "size": (24, "<I"), "name_length": (28, "<H"),
           "header_offset": (42, "<I")}


def layout(data: bytes) -> list[SimpleNamespace]:
    """Where each member's local header, directory entry and data lie in a valid archive."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    entries, position = [], archive.start_dir
    for info in archive.infolist():
        assert data[position:position + 4] == b"PK\x01\x02"
        name_length, extra_length, comment_length = struct.unpack_from("<3H", data, position + 28)
        local_name, local_extra = struct.unpack_from("<2H", data, info.header_offset + 26)
        start = info.header_offset + 30 + local_name + local_extra
        entries.append(SimpleNamespace(info=info, local=info.header_offset, central=position,
                                       data=start, end=start + info.compress_size,
                                       local_name=info.header_offset + 30, central_name=position + 46))
        position += 46 + name_length + extra_length + comment_length
    return entries


def raw_zip(name: str, payload: bytes, *, size: int, crc: int, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A one-member archive around ``payload`` as given (already compressed), sizes and CRC as given."""
    encoded = name.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size,
                        len(encoded), 0) + encoded
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(payload), size,
                          len(encoded), 0, 0, 0, 0, 0, 0) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local) + len(payload), 0)
    return local + payload + central + end


def patched(data: bytes, at: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, value)
    return bytes(out)


def set_field(data: bytes, entry: SimpleNamespace, where: str, field: str, value: int) -> bytes:
    offset, fmt = (LOCAL if where == "local" else CENTRAL)[field]
    return patched(data, (entry.local if where == "local" else entry.central) + offset, fmt, value)


def get_field(data: bytes, entry: SimpleNamespace, where: str, field: str) -> int:
    offset, fmt = (LOCAL if where == "local" else CENTRAL)[field]
    return struct.unpack_from(fmt, data, (entry.local if where == "local" else entry.central) + offset)[0]


def replace_in_names(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace bytes of the member names in local headers and directory (same length)."""
    assert len(old) == len(new)
    out = bytearray(data)
    for entry in layout(data):
        for at in (entry.local_name, entry.central_name):
            length = len(entry.info.orig_filename.encode())
            out[at:at + length] = bytes(out[at:at + length]).replace(old, new)
    return bytes(out)


# -- judging an outcome -----------------------------------------------------------------

QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'")
REPR_MARKS = ("object at 0x", "Error(", "<class", "ZipInfo", "dtype(", "array([", "Traceback", "\\n'", "np.")


def assert_plain_message(message: str) -> None:
    """No Python representation of anything; client text only in bounded, quoted form."""
    for mark in REPR_MARKS:
        assert mark not in message, (mark, message)
    for segment in QUOTED.findall(message):
        assert len(segment) <= 2 + 64 * 10 + 1, message
    outside = QUOTED.sub("Q", message)  # the text around the quoted client strings
    assert not re.search(r"(?:^|[\s(\[,])b(?:Q|\")", outside), message  # no bytes repr b'...' or b"..."
    for char in "<>{}":  # reprs and dicts; '<f8' and friends appear only quoted
        assert char not in outside, (char, message)


def assert_explicit(refused: InvalidInput | TooLarge) -> None:
    assert refused.__cause__ is None, f"the last resort answered: {refused.__cause__!r}"
    assert_plain_message(refused.message)


def outcome(data: bytes, spec: list[ArraySpec] | None = None):
    """("accepted", arrays) or ("refused", error), as the upload service would see it."""
    try:
        headers = npz_inspect(data, max_bytes=LIMIT)
        if spec is not None:
            check_headers_against_spec(headers, spec)
        arrays = npz_read(data)
    except (InvalidInput, TooLarge) as refused:
        assert_explicit(refused)
        return "refused", refused
    assert list(arrays) == list(headers)
    for name, array in arrays.items():
        assert isinstance(array, np.ndarray)
        assert (array.shape, array.dtype) == (headers[name].shape, headers[name].dtype)
        assert array.dtype.kind in "biufc" and not array.dtype.hasobject
        if array.dtype.kind in "fc":
            assert np.isfinite(array).all()
    if spec is not None:
        assert {a.name: (a.shape, np.dtype(a.dtype)) for a in spec} == {
            name: (array.shape, array.dtype) for name, array in arrays.items()
        }
    return "accepted", arrays


def refused(data: bytes, spec: list[ArraySpec] | None = None) -> str:
    kind, result = outcome(data, spec)
    assert kind == "refused", "accepted"
    return result.message


def record(kind: str, result) -> None:
    """A hypothesis statistic: the outcome and, for a refusal, the message's template."""
    if kind == "accepted":
        event("accepted")
    else:
        event(f"refused ({type(result).__name__}): " + re.sub(r"\d+", "N", QUOTED.sub("'…'", result.message)))


# -- (a) valid archives parse and round-trip ---------------------------------------------

ORDERED_DTYPES = sorted(ACCEPTED_DTYPES)
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


# -- (c) one named test per defect class ----------------------------------------------


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_a_member_compressed_with_bzip2_or_lzma_is_refused(method):
    # zipfile would inflate these (without the output bound it applies to deflate).
    message = refused(zip_of([("coef.npy", npy(np.arange(4.0))), ("intercept.npy", npy(np.float64(0)))], method))
    assert message == (f"member 'coef.npy' uses compression method {method}; only stored (0) and deflate (8) "
                       "are accepted (as numpy.savez and numpy.savez_compressed write).")


@pytest.mark.parametrize("where", ["central", "local", "both"])
def test_a_member_with_an_unknown_compression_method_is_refused(where):
    # Before: NotImplementedError ("That compression method is not supported").
    archive = logistic()
    entry = layout(archive)[0]
    for place in ("central", "local") if where == "both" else (where,):
        archive = set_field(archive, entry, place, "method", 99)
    message = refused(archive)
    assert "compression method 99" in message and "'coef.npy'" in message


@pytest.mark.parametrize("where", ["central", "local"])
def test_a_member_with_the_encryption_flag_is_refused(where):
    # Before: RuntimeError("File <ZipInfo ...> is encrypted, password required for extraction").
    archive = logistic(compressed=True)
    entry = layout(archive)[1]
    archive = set_field(archive, entry, where, "flags", get_field(archive, entry, where, "flags") | 0x1)
    assert refused(archive) == "member 'intercept.npy' is encrypted; encrypted archives are not accepted."


@pytest.mark.parametrize(("bit", "expected"), [(0x40, "is encrypted"), (0x20, "holds patched data")])
def test_strong_encryption_and_patched_data_flags_are_refused(bit, expected):
    # Before: NotImplementedError("strong encryption (flag bit 6)" / "compressed patched data (flag bit 5)").
    archive = logistic()
    entry = layout(archive)[0]
    assert expected in refused(set_field(archive, entry, "central", "flags", bit))


def test_a_deflate_stream_corrupt_at_its_start_is_refused_before_anything_is_loaded():
    # Before: zlib.error escaped from npz_inspect.
    archive = bytearray(logistic(compressed=True))
    entry = layout(bytes(archive))[0]
    archive[entry.data] = 0xFF  # block type 3 (reserved): "invalid block type"
    with pytest.raises(InvalidInput) as raised:
        npz_inspect(bytes(archive), max_bytes=LIMIT)
    assert raised.value.message == "member 'coef.npy': its compressed (deflate) data is corrupt."
    assert_explicit(raised.value)


def test_a_deflate_stream_corrupt_after_the_npy_header_is_refused_when_the_array_is_read():
    # Before: zlib.error escaped from npz_read once npz_inspect had passed. The stream is
    # flushed to a byte boundary 16 KiB into the data (past what reading the header inflates),
    # and the block that starts there gets the reserved block type.
    content = npy(np.arange(4096.0))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(content[:16384]) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(content[16384:]) + compressor.flush()
    archive = raw_zip("coef.npy", head + tail, size=len(content), crc=zlib.crc32(content))
    assert np.array_equal(npz_read(archive)["coef"], np.arange(4096.0))
    damaged = raw_zip("coef.npy", head + b"\x07" + tail[1:], size=len(content), crc=zlib.crc32(content))
    assert set(npz_inspect(damaged, max_bytes=LIMIT)) == {"coef"}  # the header still reads
    assert refused(damaged) == "member 'coef.npy': its compressed (deflate) data is corrupt."


def test_a_member_with_a_bad_crc_is_refused():
    # Before: BadZipFile("Bad CRC-32 for file 'coef.npy'") escaped from npz_read.
    for compressed in (False, True):
        archive = logistic(compressed)
        entry = layout(archive)[0]
        damaged = set_field(archive, entry, "central", "crc", get_field(archive, entry, "central", "crc") ^ 1)
        assert refused(damaged) == "member 'coef.npy' fails its CRC-32 check: its data is damaged."


def test_a_truncated_archive_is_refused_at_every_length():
    # Before: BadZipFile, ValueError("negative seek value") or EOFError, depending on the cut.
    archive = logistic(compressed=True)
    messages = {refused(archive[:length]) for length in range(len(archive))}
    assert messages == {"the file is not an .npz archive (save it with numpy.savez or numpy.savez_compressed)."}


@pytest.mark.parametrize("length", [0, 1, 4, 21, 22, 30, 41, 42, 60])
def test_files_too_short_to_be_archives_are_refused(length):
    # Before: ValueError("negative seek value") from io.BytesIO inside zipfile.
    end_of_directory = b"PK\x05\x06" + bytes(18)
    zip64_locator = b"PK\x06\x07" + bytes(16)
    for data in (bytes(length), (b"PK" * length)[:length], (zip64_locator + end_of_directory)[-length:]):
        kind, result = outcome(data)
        assert kind == "refused" or result == {}  # 22 bytes can be an empty, valid archive


def test_a_member_shorter_than_its_declared_size_is_refused_when_read():
    # A deflate stream that ends early, with a CRC that matches what it holds.
    header = npy(np.arange(8.0))[:-64]
    content = header + np.arange(4.0).tobytes()  # half the promised data
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    archive = raw_zip("coef.npy", compressor.compress(content) + compressor.flush(),
                      size=len(header) + 64, crc=zlib.crc32(content))
    npz_inspect(archive, max_bytes=LIMIT)
    assert refused(archive) == "array 'coef': its data ends before the array is complete."


@pytest.mark.parametrize(
    ("compressed", "field", "value", "expected"),
    [
        (True, "size", +1, "holds 1 bytes after the array data"),
        (True, "size", -1, "fails its CRC-32 check"),  # a small member is inflated whole, to its end
        (False, "size", -1, "stored uncompressed, but the directory gives it"),
        (True, "size", 1 << 31, "the archive would decompress to"),
        (False, "size", +1, "stored uncompressed, but the directory gives it"),
        (True, "compressed_size", 1 << 20, "its data runs into the zip directory or past the end of the file"),
        (False, "compressed_size", -1, "stored uncompressed, but the directory gives it"),
        (False, "header_offset", 1 << 30, "its local header lies outside the data part of the archive"),
        (False, "header_offset", +1, "its local header is missing or damaged"),
    ],
)
def test_lying_sizes_and_offsets_in_the_directory_are_refused(compressed, field, value, expected):
    archive = logistic(compressed)
    entry = layout(archive)[0]
    current = get_field(archive, entry, "central", field)
    damaged = set_field(archive, entry, "central", field, value if value > 1000 else current + value)
    assert expected in refused(damaged)


def test_a_deflated_member_declaring_more_than_deflate_can_produce_is_refused():
    archive = logistic(compressed=True)
    entry = layout(archive)[0]
    damaged = set_field(archive, entry, "central", "size", 1032 * entry.info.compress_size + 2048)
    assert "more than deflate can produce" in refused(damaged)


@pytest.mark.parametrize("field", ["size", "compressed_size", "crc"])
def test_lying_sizes_in_local_headers_are_ignored_the_directory_and_the_crc_rule(field):
    for compressed in (False, True):
        archive = logistic(compressed)
        for entry in layout(archive):
            archive = set_field(archive, entry, "local", field, 12345)
        kind, arrays = outcome(archive, LOGISTIC)
        assert kind == "accepted"
        np.testing.assert_array_equal(arrays["coef"], np.arange(4.0))


def test_overlapping_members_are_refused():
    # A stored member whose directory entry claims the bytes of the next member (the
    # overlapping-entries zip bomb); zipfile of Python 3.11 does not notice.
    archive = logistic()
    first, second = layout(archive)
    grown = second.end - first.data
    for field in ("size", "compressed_size"):
        archive = set_field(archive, first, "central", field, grown)
    assert refused(archive) == (
        "members 'coef.npy' and 'intercept.npy' overlap in the archive; each member must have bytes of its own."
    )


def test_two_directory_entries_for_one_member_are_refused():
    archive = logistic()
    first, second = layout(archive)
    archive = set_field(archive, second, "central", "header_offset", first.local)
    assert "its local header names it 'coef.npy'" in refused(archive)


def test_a_member_name_that_appears_twice_is_refused():
    archive = zip_of([("coef.npy", npy(np.arange(4.0))), ("coef.npy", npy(np.arange(4.0)))])
    assert refused(archive) == "array 'coef' appears twice in the archive."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dir/coef.npy", "member 'dir/coef.npy' is not a top-level .npy array."),
        ("..\\coef.npy", "member '..\\\\coef.npy' is not a top-level .npy array."),
        ("coef.txt", "member 'coef.txt' is not a top-level .npy array."),
        ("coef.NPY", "member 'coef.NPY' is not a top-level .npy array."),
        (".npy", "member '.npy': the array has an empty name."),
        ("co\x07ef.npy", "member 'co\\x07ef.npy': its name contains unprintable characters."),
        ("co\u202eef.npy", "member 'co\\u202eef.npy': its name contains unprintable characters."),
        ("w" * (MAX_NAME_LENGTH + 1) + ".npy",
         f"member '{'w' * 64}…': array names have at most {MAX_NAME_LENGTH} characters."),
    ],
)
def test_invalid_member_names_are_refused(name, expected):
    assert refused(zip_of([(name, npy(np.arange(4.0)))])) == expected


def test_a_member_name_with_a_nul_character_is_refused():
    # zipfile cuts a name at NUL: "coef.npy\0.exe" would have been read as "coef.npy".
    archive = replace_in_names(zip_of([("coef.npyX.exe", npy(np.arange(4.0)))]), b"X", b"\x00")
    assert refused(archive) == "member 'coef.npy\\x00.exe': its name contains a NUL character."


@pytest.mark.parametrize("where", ["central", "local"])
def test_a_member_name_flagged_utf8_that_is_not_is_refused(where):
    # Before: UnicodeDecodeError from zipfile.ZipFile (directory) or ZipFile.open (local header).
    archive = replace_in_names(zip_of([("coXf.npy", npy(np.arange(4.0)))]), b"X", b"\xc3")  # "├" in cp437
    entry = layout(archive)[0]  # read as cp437 while the flag is not set
    archive = set_field(archive, entry, where, "flags", get_field(archive, entry, where, "flags") | 0x800)
    message = refused(archive)
    assert "not valid UTF-8" in message


def test_a_directory_entry_that_needs_a_newer_zip_version_is_refused():
    # Before: NotImplementedError("zip file version 9.9") from zipfile.ZipFile.
    archive = logistic()
    archive = set_field(archive, layout(archive)[0], "central", "extract_version", 99)
    assert refused(archive) == "the archive uses zip features that are not supported."


def test_a_damaged_zip_directory_is_refused():
    archive = bytearray(logistic())
    entry = layout(bytes(archive))[1]
    archive[entry.central:entry.central + 4] = b"XXXX"
    assert refused(bytes(archive)) == "the zip directory of the archive is damaged or truncated."


@pytest.mark.parametrize(
    ("shape", "descr", "expected"),
    [
        ((2**32, 2**32), "<f8", "is too large for any array"),  # the int64 product wrapped to 0 before
        ((2**31, 2**31), "|u1", "its header promises more data than the member holds"),
        ((2**62, 2**62, 4), "<f8", "is too large for any array"),
        ((0, 2**62, 4), "<f8", "is too large for any array"),  # empty, but not representable either
        ((2**70,), "|u1", "is too large for any array"),
        ((10**6,), "<f8", "its header promises more data than the member holds"),
    ],
)
def test_huge_declared_shapes_are_refused_without_allocating(shape, descr, expected):
    archive = zip_of([("w.npy", npy_raw(header_text(descr, shape), b"\x00" * 16))])
    assert expected in refused(archive)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (header_text("<f8", (-1,)), "has a negative dimension"),
        (header_text("<f8", (-4, -2)), "has a negative dimension"),
        (header_text("<f8", (True,)), "is not a tuple of integers"),
        (header_text("<f8", [4]), "is not a tuple of integers"),
        (header_text("<f8", (4.0,)), "is not a tuple of integers"),
        (header_text("<f8", "4"), "is not a tuple of integers"),
        (header_text("<f8", (1,) * (MAX_NDIM + 1)), f"has {MAX_NDIM + 1} dimensions; at most {MAX_NDIM}"),
        (header_text("<f8", (4,), fortran_order=1), "fortran_order in its .npy header must be True or False"),
        (header_text("<f8", (4,), fortran_order="yes"), "fortran_order in its .npy header must be True or False"),
        (header_text(3, (4,)), "the descr of its .npy header is not a dtype string"),
        (repr({"descr": "<f8", "shape": (4,)}), "must be a dict of exactly descr, fortran_order and shape"),
        (repr({"descr": "<f8", "fortran_order": False, "shape": (4,), "x": 1}), "a dict of exactly"),
        (repr(["<f8", False, (4,)]), "must be a dict of exactly"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (4,)", "is not a Python dict literal"),
        ("__import__('os').system('true')", "is not a Python dict literal"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (4L,)}", "is not a Python dict literal"),
        ("(" * 4000 + ")" * 4000, "is not a Python dict literal"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",)}", "is not a Python dict literal"),
    ],
)
def test_negative_and_odd_header_values_are_refused(header, expected):
    message = refused(zip_of([("w.npy", npy_raw(header, b"\x00" * 32))]))
    assert expected in message and message.startswith("array 'w'")


def test_fortran_order_arrays_round_trip():
    matrix = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    cube = np.asfortranarray(np.arange(24, dtype=">i4").reshape(2, 3, 4))
    for compressed in (False, True):
        data = save(compressed, m=matrix, c=cube)
        first = layout(data)[0]
        member = data[first.data:first.end]
        assert b"'fortran_order': True" in (zlib.decompressobj(-15).decompress(member) if compressed else member)
        kind, arrays = outcome(data, [ArraySpec("m", (3, 4), "<f8"), ArraySpec("c", (2, 3, 4), ">i4")])
        assert kind == "accepted"
        np.testing.assert_array_equal(arrays["m"], matrix)
        np.testing.assert_array_equal(arrays["c"], cube)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]), "has a structured dtype (with fields)"),
        (np.array([object(), 1], dtype=object), "has dtype object ('|O'); object arrays are not accepted"),
        (np.zeros(3, dtype="V8"), "has dtype '|V8', which is not accepted"),
        (np.array(["abc"]), "has dtype '<U3', which is not accepted"),
        (np.array([b"abc"]), "has dtype '|S3', which is not accepted"),
        (np.array(["2020-01-01"], dtype="M8[s]"), "has dtype '<M8[s]', which is not accepted"),
        (np.array([1], dtype="m8[s]"), "has dtype '<m8[s]', which is not accepted"),
    ],
)
def test_structured_object_void_and_other_non_numeric_dtypes_are_refused(array, expected):
    message = refused(zip_of([("w.npy", npy(array))]))
    assert message.startswith("array 'w' ") and expected in message


def test_a_subarray_dtype_is_refused():
    message = refused(zip_of([("w.npy", npy_raw(header_text(("<f8", (2,)), (3,)), b"\x00" * 48))]))
    assert message == "array 'w' has a subarray dtype; only plain numbers are accepted."


def test_big_endian_arrays_round_trip_and_are_refused_for_a_native_spec_naming_the_byte_order():
    big = np.arange(4.0).astype(">f8")
    data = logistic(coef=big)
    kind, arrays = outcome(data, [ArraySpec("coef", (4,), ">f8"), ArraySpec("intercept", (), "<f8")])
    assert kind == "accepted" and arrays["coef"].dtype == np.dtype(">f8")
    np.testing.assert_array_equal(arrays["coef"], big)
    assert refused(data, LOGISTIC) == (
        "array 'coef': expected dtype float64, received float64 (expected little-endian '<f8', "
        "received big-endian '>f8'); convert it with array.astype('<f8') before saving."
    )
    assert refused(logistic(coef=np.arange(4, dtype=">i2")), LOGISTIC) == (
        "array 'coef': expected dtype float64, received int16 "
        "(expected little-endian '<f8', received big-endian '>i2')."
    )
    assert refused(logistic(coef=np.arange(4, dtype="u1")), LOGISTIC) == (
        "array 'coef': expected dtype float64, received uint8 (expected little-endian '<f8', received '|u1')."
    )


@pytest.mark.parametrize("descr", [descr for descr in ORDERED_DTYPES if descr != "<f8"])
def test_every_dtype_mismatch_names_both_byte_orders(descr):
    dtype = np.dtype(descr)
    message = refused(logistic(coef=np.zeros(4, dtype=dtype)), LOGISTIC)
    order = {"<": "little-endian ", ">": "big-endian "}.get(dtype.str[0], "")
    assert message.startswith(f"array 'coef': expected dtype float64, received {dtype.name} "
                              f"(expected little-endian '<f8', received {order}'{dtype.str}')")


@pytest.mark.parametrize("descr", ["=f8", "|f8", "|i4", "=c16"])
def test_dtypes_that_do_not_state_their_byte_order_are_refused(descr):
    message = refused(zip_of([("w.npy", npy_raw(header_text(descr, (2,)), b"\x00" * 32))]))
    code = descr[1:]
    assert message == (f"array 'w' has dtype '{descr}', which does not state its byte order; "
                       f"save it as '<{code}' (little-endian) or '>{code}' (big-endian).")


@pytest.mark.parametrize("descr", ["<f3", "<i16", "xyz", "", "<f16", ">c32", "f8", "<f8 "])
def test_dtype_strings_numpy_refuses_or_that_are_not_portable_are_refused(descr):
    # '<f16' and '>c32' (long double) are numpy dtypes whose layout differs between platforms.
    message = refused(zip_of([("w.npy", npy_raw(header_text(descr, (2,)), b"\x00" * 64))]))
    assert "which is not accepted; accepted are bool, int8 to int64" in message


@pytest.mark.parametrize(
    "header",
    [header_text("<f8\x00", (2,)), header_text("<f8", (2,)) + "\x07", header_text("<f\u00e9", (2,)),
     "{'descr': '\\x3cf8', 'fortran_order': False, 'shape': (2,)}"],
)
def test_npy_headers_with_escapes_or_characters_numpy_does_not_write_are_refused(header):
    # Before: the literal parser saw them (and warned about "invalid escape sequence").
    message = refused(zip_of([("w.npy", npy_raw(header, b"\x00" * 16))]))
    assert message == ("array 'w': its .npy header holds characters numpy does not write there "
                       "(only printable ASCII without backslashes is accepted).")


def test_0d_arrays_round_trip():
    for compressed in (False, True):
        data = save(compressed, a=np.float64(1.5), b=np.array(7, dtype=">i8"), c=np.array(True))
        kind, arrays = outcome(data, [ArraySpec("a", (), "<f8"), ArraySpec("b", (), ">i8"), ArraySpec("c", (), "|b1")])
        assert kind == "accepted" and arrays["a"].shape == () and arrays["b"] == 7 and arrays["c"]


def test_zero_size_arrays_round_trip():
    for compressed in (False, True):
        data = save(compressed, a=np.zeros((0,)), b=np.zeros((3, 0, 2), dtype=">f4"))
        kind, arrays = outcome(data, [ArraySpec("a", (0,), "<f8"), ArraySpec("b", (3, 0, 2), ">f4")])
        assert kind == "accepted" and arrays["b"].shape == (3, 0, 2)


def test_npy_format_versions_and_magic_are_checked():
    content = np.arange(4.0).tobytes()
    header = header_text("<f8", (4,))
    for version in ((1, 0), (2, 0)):
        kind, arrays = outcome(zip_of([("w.npy", npy_raw(header, content, version))]))
        assert kind == "accepted"
        np.testing.assert_array_equal(arrays["w"], np.arange(4.0))
    assert "uses .npy format version 3.0" in refused(zip_of([("w.npy", npy_raw(header, content, (3, 0)))]))
    assert "uses .npy format version 9.9" in refused(zip_of([("w.npy", npy_raw(header, content, (9, 9)))]))
    assert refused(zip_of([("w.npy", b"\x93NUMPZ\x01\x00" + content)])) == (
        "member 'w.npy' is not a .npy array: it does not start with the .npy magic string."
    )
    assert "does not start with the .npy magic" in refused(zip_of([("w.npy", b"")]))
    assert "its .npy header is truncated" in refused(zip_of([("w.npy", npy_raw(header, content)[:40])]))


def test_an_oversized_npy_header_is_refused():
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (4,)}" + " " * MAX_HEADER_SIZE
    message = refused(zip_of([("w.npy", npy_raw(header, b"\x00" * 32, (2, 0)))]))
    assert f"at most {MAX_HEADER_SIZE} are accepted" in message


def test_bytes_after_the_array_data_are_refused():
    message = refused(zip_of([("w.npy", npy(np.arange(4.0)) + b"\x00" * 8)]))
    assert message == "array 'w': the member holds 8 bytes after the array data."


def test_nan_and_infinity_are_refused():
    assert refused(logistic(coef=np.array([0.0, np.nan, np.inf, 0.0]))) == (
        "array 'coef' holds 2 non-finite value(s) (NaN or infinity)."
    )
    assert "holds 1 non-finite" in refused(logistic(coef=np.array([0, 1j * np.inf, 0, 0])))


def test_more_members_than_the_maximum_are_refused():
    members = [(f"a{i}.npy", npy(np.float64(i))) for i in range(MAX_MEMBERS + 1)]
    assert refused(zip_of(members)) == (
        f"the archive holds more than {MAX_MEMBERS} members; at most {MAX_MEMBERS} arrays are accepted."
    )
    assert outcome(zip_of(members[:MAX_MEMBERS]))[0] == "accepted"


def test_a_directory_of_a_million_entries_is_refused_before_zipfile_parses_it():
    # One local header and a directory that lists it a million times (51 MB, under the
    # 64 MB upload limit); the end record's entry count, which zipfile ignores, says 1.
    single = zip_of([("a.npy", b"")])
    start = zipfile.ZipFile(io.BytesIO(single)).start_dir
    directory = single[start:-22] * 1_000_000
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), start, 0)
    started = time.perf_counter()
    with pytest.raises(InvalidInput) as raised:
        npz_inspect(single[:start] + directory + end, max_bytes=64 * 1024 * 1024)
    assert time.perf_counter() - started < 0.5
    assert_explicit(raised.value)
    assert raised.value.message == f"the archive holds more than {MAX_MEMBERS} members; at most {MAX_MEMBERS} arrays are accepted."


def test_the_size_limits_are_unchanged():
    data = logistic()
    with pytest.raises(TooLarge) as raised:
        npz_inspect(data, max_bytes=len(data) - 1)
    assert raised.value.message == f"the file is {len(data)} bytes; the limit is {len(data) - 1} bytes."
    bomb = save(True, coef=np.zeros(1_000_000))
    with pytest.raises(TooLarge) as raised:
        npz_inspect(bomb, max_bytes=len(bomb) * 2)
    assert raised.value.message.startswith("the archive would decompress to 8000128 bytes")


def test_messages_quote_escape_and_truncate_client_names():
    names = {"x'y": np.float64(0), "a, b": np.float64(0), "n" * 100: np.float64(0)}
    data = zip_of([(name + ".npy", npy(array)) for name, array in names.items()])
    message = refused(data, [ArraySpec("coef", (), "float64")])
    assert message == (
        "missing array(s) coef; the spec expects coef."
    )
    headers = npz_inspect(data, max_bytes=LIMIT)
    with pytest.raises(InvalidInput) as raised:
        check_headers_against_spec(headers | {"coef": headers["x'y"]}, [ArraySpec("coef", (), "float64")])
    assert raised.value.message == (
        f"unexpected array(s) 'x\\'y', 'a, b', '{'n' * 64}…'; the spec expects coef."
    )
    assert_plain_message(raised.value.message)
    many = {f"extra{i}": headers["x'y"] for i in range(30)}
    with pytest.raises(InvalidInput) as raised:
        check_headers_against_spec(many | {"coef": headers["x'y"]}, [ArraySpec("coef", (), "float64")])
    assert raised.value.message.startswith("unexpected array(s) extra0, extra1,")
    assert "extra9 and 20 more; the spec expects coef." in raised.value.message


def test_an_unforeseen_error_is_answered_as_invalid_input_logged_and_chained(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise TypeError("something numpy never raised before")

    monkeypatch.setattr(np.lib.format, "read_array", broken)
    with caplog.at_level(logging.ERROR, logger=npz.__name__), pytest.raises(InvalidInput) as raised:
        npz_read(logistic())
    assert raised.value.message == "the file could not be read as an .npz archive; it is damaged or malformed."
    assert isinstance(raised.value.__cause__, TypeError)  # which every test above rules out
    assert "unexpected error while reading an uploaded .npz archive" in caplog.text
