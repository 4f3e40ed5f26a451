"""Building, damaging and judging ``.npz`` archives for the upload-validation tests.

Not a test module: ``test_npz.py`` (one named test per defect class) and ``test_npz_fuzz.py``
(property tests and exhaustive loops) share these.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zipfile
from types import SimpleNamespace

import numpy as np
from hypothesis import HealthCheck, event
from hypothesis import settings as hypothesis_settings

from core.errors import InvalidInput, TooLarge
from valuation.npz import ACCEPTED_DTYPES, check_headers_against_spec, npz_inspect, npz_read
from valuation.spec import ArraySpec

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
FUZZ = hypothesis_settings(
    derandomize=True, database=None, deadline=None, max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMIT = 1 << 20
ORDERED_DTYPES = sorted(ACCEPTED_DTYPES)

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


