"""The arrays of an upload (valuation/npz.py): one named test per defect class of the .npy
members (the zip container's are in test_zip_members.py).

A refusal must be an explicit one: ``npz.py`` turns an exception it did not foresee into
``InvalidInput`` *chained* to it (``__cause__``), and every test here fails on such a
refusal, so the last resort is never what makes a test pass. The property tests are in
``test_npz_fuzz.py``.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pytest

from core.errors import InvalidInput, TooLarge
from tests.valuation.npz_archives import (
    LIMIT,
    LOGISTIC,
    ORDERED_DTYPES,
    assert_plain_message,
    header_text,
    layout,
    logistic,
    npy,
    npy_raw,
    outcome,
    refused,
    save,
    zip_of,
)
from valuation import npz
from valuation.npz import MAX_HEADER_SIZE, check_headers_against_spec, npz_inspect, npz_read
from valuation.spec import MAX_NDIM, ArraySpec

# -- (c) one named test per defect class ----------------------------------------------


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
