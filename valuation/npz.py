"""Safe reading of uploaded ``.npz`` archives.

An archive is inspected before anything is inflated: the zip directory gives each member's
declared uncompressed size (bounded by a limit, so a zip bomb is refused unread) and each
``.npy`` header gives shape and dtype, which the caller checks against the training run's
spec. Only then are the arrays loaded, with ``allow_pickle=False``, and checked for
non-finite values. ``zipfile`` never inflates a member past its declared size and checks
its CRC, so a directory that lies about sizes cannot get past the limit either.

The contract of :func:`npz_inspect`, :func:`check_headers_against_spec` and
:func:`npz_read` is that *any* byte string is answered with the arrays or with a
:class:`core.errors.InvalidInput` (a damaged or unacceptable archive) or
:class:`core.errors.TooLarge` (a size limit), whose message says in plain words what is
wrong. Each damage that ``zipfile``, ``zlib`` or numpy would otherwise report with their
own exception is checked for explicitly, before those layers see it:

- the zip layer (``valuation/zip_members.py``): a directory of more than ``MAX_MEMBERS`` entries is refused before
  ``zipfile`` parses it (it would build an object per entry); the archive is read through
  a buffer that reports a seek before its start as ``OSError``, as a real file does, so
  ``zipfile`` answers a short or truncated file with ``BadZipFile``; every member must
  lie, local header and data, inside the archive before the central directory, without
  overlapping another; its local header must match the directory (signature, name,
  compression method); encrypted members (flag bits 0 and 6), patched data (bit 5) and
  compression methods other than stored (0) and deflate (8) are refused (``zipfile`` would
  inflate bzip2 and lzma without bounding the output), as are a stored member whose two
  sizes differ and a deflated member that declares more than deflate can produce from its
  compressed size;
- member names: ``<name>.npy`` at the top level, printable, no NUL, no path separator,
  at most ``MAX_NAME_LENGTH`` characters, each name once;
- the ``.npy`` header: magic string, format version 1.0 or 2.0, header length at most
  :data:`MAX_HEADER_SIZE`, printable ASCII without backslashes (so the literal parser never
  sees escapes or control characters), a literal dict with exactly ``descr``,
  ``fortran_order``, ``shape``; a shape of at most :data:`valuation.spec.MAX_NDIM`
  non-negative integers whose size fits numpy; a dtype from :data:`ACCEPTED_DTYPES`
  (booleans, integers, floats of 16 to 64 bits, complex of 64 or 128 bits) with an
  explicit byte order; exactly as many data bytes as the header promises;
- reading the data: ``zipfile`` and ``zlib`` report a corrupt deflate stream, a bad CRC
  or data that ends early while the member is read; those three (``zlib.error``,
  ``BadZipFile``, ``EOFError``) and numpy's ``ValueError`` for short data are turned into
  ``InvalidInput`` where the member is read.

Last resort: whatever else the zip or numpy layer might raise while an archive is read is
logged (with its traceback) and answered as ``InvalidInput`` too, chained to the original
exception (``__cause__``); every explicit refusal above has no cause, which is how the
tests tell the two apart. ``MemoryError`` is not converted: it is a server fault.

Client-chosen names appear in messages quoted, escaped and truncated
(:func:`valuation.spec.quoted`); dtypes are named with their byte order
(:func:`describe_dtype`). No message shows a Python representation of client data.
"""

from __future__ import annotations

import ast
import io
import logging
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput, ServiceError, TooLarge
from valuation.spec import MAX_NDIM, ArraySpec, names_text, quoted
from valuation.zip_members import ZipMember, member_reading, zip_members, zip_open

logger = logging.getLogger(__name__)

# The dtypes an archive may hold: plain numbers of a fixed, portable width. Multi-byte
# types need an explicit byte order ('<' little-endian or '>' big-endian); long double
# ('f16', 'c32') is refused because its layout differs between platforms.
_MULTI_BYTE_CODES = ("i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16")
_SINGLE_BYTE_CODES = ("b1", "i1", "u1")
ACCEPTED_DTYPES = frozenset(
    [order + code for order in "<>" for code in _MULTI_BYTE_CODES]
    + [order + code for order in "<>|" for code in _SINGLE_BYTE_CODES]
)
_ACCEPTED_IN_WORDS = (
    "bool, int8 to int64, uint8 to uint64, float16 to float64, complex64 and complex128, "
    "little- or big-endian"
)
MAX_HEADER_SIZE = 10_000  # numpy's own default limit on a .npy header (max_header_size)
_MAX_ARRAY_BYTES = int(np.iinfo(np.intp).max)  # the most bytes numpy can address in one array
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER_LENGTH_FORMAT = {(1, 0): "<H", (2, 0): "<I"}
_NPY_KEYS = {"descr", "fortran_order", "shape"}


@dataclass(frozen=True)
class ArrayHeader:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def describe_dtype(dtype: np.dtype) -> str:
    """``float64 (little-endian, '<f8')``; ``int8 ('|i1')`` where byte order does not apply."""
    order = {"<": "little-endian, ", ">": "big-endian, "}.get(dtype.str[0], "")
    return f"{dtype.name} ({order}'{dtype.str}')"


def _byte_order_words(dtype: np.dtype) -> str:
    return {"<": "little-endian ", ">": "big-endian "}.get(dtype.str[0], "")


@contextmanager
def _last_resort() -> Iterator[None]:
    """Answer an exception that no explicit check foresaw as ``InvalidInput`` (logged, and
    chained to the original so that it can be told apart); service errors pass through."""
    try:
        yield
    except (ServiceError, MemoryError):
        raise
    except Exception as exc:
        logger.error("unexpected error while reading an uploaded .npz archive", exc_info=True)
        raise InvalidInput("the file could not be read as an .npz archive; it is damaged or malformed.") from exc


def _dtype(name: str, descr) -> np.dtype:
    array = quoted(name)
    if isinstance(descr, list):
        raise InvalidInput(f"array {array} has a structured dtype (with fields); only plain numbers are accepted.")
    if isinstance(descr, tuple):
        raise InvalidInput(f"array {array} has a subarray dtype; only plain numbers are accepted.")
    if not isinstance(descr, str):
        raise InvalidInput(f"array {array}: the descr of its .npy header is not a dtype string.")
    if descr.lstrip("<>|=").startswith("O"):
        raise InvalidInput(f"array {array} has dtype object ({quoted(descr)}); object arrays are not accepted.")
    if descr not in ACCEPTED_DTYPES:
        if descr[:1] in ("=", "|") and descr[1:] in _MULTI_BYTE_CODES:
            raise InvalidInput(
                f"array {array} has dtype {quoted(descr)}, which does not state its byte order; "
                f"save it as {quoted('<' + descr[1:])} (little-endian) or {quoted('>' + descr[1:])} (big-endian)."
            )
        raise InvalidInput(f"array {array} has dtype {quoted(descr)}, which is not accepted; "
                           f"accepted are {_ACCEPTED_IN_WORDS}.")
    return np.dtype(descr)


def _shape(name: str, shape, dtype: np.dtype) -> tuple[int, ...]:
    array = quoted(name)
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and not isinstance(n, bool) for n in shape):
        raise InvalidInput(f"array {array}: the shape in its .npy header is not a tuple of integers.")
    if len(shape) > MAX_NDIM:
        raise InvalidInput(f"array {array} has {len(shape)} dimensions; at most {MAX_NDIM} are accepted.")
    if any(n < 0 for n in shape):
        raise InvalidInput(f"array {array}: the shape in its .npy header has a negative dimension.")
    addressed = dtype.itemsize
    for n in shape:
        addressed *= max(n, 1)  # numpy checks the non-zero dimensions even of an empty array
    if addressed > _MAX_ARRAY_BYTES:
        raise InvalidInput(f"array {array}: the shape in its .npy header is too large for any array.")
    return shape


def _header(archive: zipfile.ZipFile, member: ZipMember) -> ArrayHeader:
    """The member's .npy header, checked completely, read without inflating the data."""
    name, info = member.name, member.info
    array, quoted_member = quoted(name), quoted(info.orig_filename)
    with member_reading(name), archive.open(info) as stream:
        prefix = stream.read(len(_NPY_MAGIC) + 2)
        if prefix[: len(_NPY_MAGIC)] != _NPY_MAGIC or len(prefix) < len(_NPY_MAGIC) + 2:
            raise InvalidInput(
                f"member {quoted_member} is not a .npy array: it does not start with the .npy magic string."
            )
        version = (prefix[-2], prefix[-1])
        if version not in _NPY_HEADER_LENGTH_FORMAT:
            raise InvalidInput(
                f"array {array} uses .npy format version {version[0]}.{version[1]}; "
                "versions 1.0 and 2.0 are accepted (numpy writes them for every accepted dtype)."
            )
        length_format = _NPY_HEADER_LENGTH_FORMAT[version]
        length_bytes = stream.read(struct.calcsize(length_format))
        if len(length_bytes) < struct.calcsize(length_format):
            raise InvalidInput(f"array {array}: its .npy header is truncated.")
        (header_length,) = struct.unpack(length_format, length_bytes)
        if header_length > MAX_HEADER_SIZE:
            raise InvalidInput(
                f"array {array}: its .npy header is {header_length} bytes long; at most {MAX_HEADER_SIZE} are accepted."
            )
        header_bytes = stream.read(header_length)
        if len(header_bytes) < header_length:
            raise InvalidInput(f"array {array}: its .npy header is truncated.")
    text = header_bytes.decode("latin1")
    if not all(" " <= char <= "~" or char in "\t\n\r" for char in text) or "\\" in text:
        # What numpy writes for the accepted dtypes is plain ASCII; nothing else reaches the parser.
        raise InvalidInput(
            f"array {array}: its .npy header holds characters numpy does not write there "
            "(only printable ASCII without backslashes is accepted)."
        )
    try:
        fields = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):  # what literal_eval documents
        raise InvalidInput(f"array {array}: its .npy header is not a Python dict literal.") from None
    if not isinstance(fields, dict) or set(fields) != _NPY_KEYS:
        raise InvalidInput(f"array {array}: its .npy header must be a dict of exactly descr, fortran_order and shape.")
    if not isinstance(fields["fortran_order"], bool):
        raise InvalidInput(f"array {array}: fortran_order in its .npy header must be True or False.")
    dtype = _dtype(name, fields["descr"])
    shape = _shape(name, fields["shape"], dtype)
    # numpy's own reader has the last word on the header it will load the data with.
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        numpy_shape, numpy_fortran, numpy_dtype = reader(
            io.BytesIO(length_bytes + header_bytes), max_header_size=MAX_HEADER_SIZE
        )
    except ValueError:
        raise InvalidInput(f"array {array}: numpy does not accept its .npy header.") from None
    if (tuple(numpy_shape), numpy_fortran, numpy_dtype) != (shape, fields["fortran_order"], dtype):
        raise InvalidInput(f"array {array}: numpy reads its .npy header differently.")
    header_size = len(prefix) + len(length_bytes) + header_length
    data_size = info.file_size - header_size
    promised = dtype.itemsize
    for n in shape:
        promised *= n
    if promised > data_size:
        raise InvalidInput(
            f"array {array}: its header promises more data than the member holds "
            f"({promised} bytes for shape {list(shape)} of {describe_dtype(dtype)}, {max(data_size, 0)} bytes present)."
        )
    if promised < data_size:
        raise InvalidInput(f"array {array}: the member holds {data_size - promised} bytes after the array data.")
    return ArrayHeader(name=name, shape=shape, dtype=dtype)


def npz_inspect(data: bytes, *, max_bytes: int) -> dict[str, ArrayHeader]:
    """Names, shapes and dtypes of the arrays in ``data``, without inflating them."""
    if len(data) > max_bytes:
        raise TooLarge(f"the file is {len(data)} bytes; the limit is {max_bytes} bytes.")
    with _last_resort():
        with zip_open(data) as archive:
            declared = sum(info.file_size for info in archive.infolist())
            if declared > max_bytes:
                raise TooLarge(
                    f"the archive would decompress to {declared} bytes; the limit is {max_bytes} bytes."
                )
            return {member.name: _header(archive, member) for member in zip_members(archive, data)}


def check_headers_against_spec(headers: dict[str, ArrayHeader], spec: list[ArraySpec]) -> None:
    """Every spec array present with its exact shape and dtype (byte order included), and
    nothing else."""
    expected = {array.name: array for array in spec}
    missing = [name for name in expected if name not in headers]
    if missing:
        raise InvalidInput(f"missing array(s) {names_text(missing)}; the spec expects {names_text(expected)}.")
    unexpected = [name for name in headers if name not in expected]
    if unexpected:
        raise InvalidInput(f"unexpected array(s) {names_text(unexpected)}; the spec expects {names_text(expected)}.")
    for name, array in expected.items():
        header = headers[name]
        if header.shape != array.shape:
            raise InvalidInput(
                f"array {quoted(name)}: expected shape {list(array.shape)}, received {list(header.shape)}."
            )
        wanted = np.dtype(array.dtype)
        if header.dtype != wanted:
            message = (
                f"array {quoted(name)}: expected dtype {wanted.name}, received {header.dtype.name} "
                f"(expected {_byte_order_words(wanted)}'{wanted.str}', "
                f"received {_byte_order_words(header.dtype)}'{header.dtype.str}')"
            )
            if header.dtype.newbyteorder("=") == wanted.newbyteorder("="):
                message += f"; convert it with array.astype('{wanted.str}') before saving"
            raise InvalidInput(message + ".")


def npz_read(data: bytes) -> dict[str, np.ndarray]:
    """Load every array (no pickles) and refuse NaN or infinite values.

    The archive passes the same checks as in :func:`npz_inspect` (which the caller runs
    first, with the size limit) before any array is loaded; each member is then read with
    numpy's ``.npy`` reader (``allow_pickle=False``), by its own zip entry.
    """
    arrays: dict[str, np.ndarray] = {}
    with _last_resort():
        with zip_open(data) as archive:
            for member in zip_members(archive, data):
                header = _header(archive, member)
                name = member.name
                with member_reading(name), archive.open(member.info) as stream:
                    try:
                        array = np.lib.format.read_array(stream, allow_pickle=False, max_header_size=MAX_HEADER_SIZE)
                    except ValueError:  # numpy's "EOF: reading array data": the member holds less
                        raise InvalidInput(
                            f"array {quoted(name)}: its data ends before the array is complete."
                        ) from None
                    if stream.read(1):  # also makes zipfile verify the CRC of the last bytes read
                        raise InvalidInput(f"array {quoted(name)}: the member holds bytes after the array data.")
                if array.shape != header.shape or array.dtype != header.dtype:
                    raise InvalidInput(f"array {quoted(name)}: its data does not match its .npy header.")
                if array.dtype.kind in "fc" and not np.isfinite(array).all():
                    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
                    raise InvalidInput(f"array {quoted(name)} holds {bad} non-finite value(s) (NaN or infinity).")
                arrays[name] = array
    return arrays
