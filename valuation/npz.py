"""Safe reading of uploaded ``.npz`` archives.

An archive is inspected before anything is inflated: the zip directory gives each member's
declared uncompressed size (bounded by a limit, so a zip bomb is refused unread) and each
``.npy`` header gives shape and dtype, which the caller checks against the training run's
spec. Only then are the arrays loaded, with ``allow_pickle=False``, and checked for
non-finite values. ``zipfile`` never inflates a member past its declared size and checks
its CRC, so a directory that lies about sizes cannot get past the limit either.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput, TooLarge
from valuation.spec import ArraySpec


@dataclass(frozen=True)
class ArrayHeader:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(info) as member:
        try:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
            raise InvalidInput(f"member {info.filename!r} is not a valid .npy array: {exc}") from None
    return tuple(shape), dtype


def npz_inspect(data: bytes, *, max_bytes: int) -> dict[str, ArrayHeader]:
    """Names, shapes and dtypes of the arrays in ``data``, without inflating them."""
    if len(data) > max_bytes:
        raise TooLarge(f"the file is {len(data)} bytes; the limit is {max_bytes} bytes.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidInput("the file is not an .npz archive (save it with numpy.savez or numpy.savez_compressed).") from None
    with archive:
        members = archive.infolist()
        declared = sum(info.file_size for info in members)
        if declared > max_bytes:
            raise TooLarge(
                f"the archive would decompress to {declared} bytes; the limit is {max_bytes} bytes."
            )
        headers: dict[str, ArrayHeader] = {}
        for info in members:
            if not info.filename.endswith(".npy") or "/" in info.filename:
                raise InvalidInput(f"member {info.filename!r} is not a top-level .npy array.")
            name = info.filename[: -len(".npy")]
            if name in headers:
                raise InvalidInput(f"array {name!r} appears twice in the archive.")
            shape, dtype = _read_header(archive, info)
            if dtype.hasobject:
                raise InvalidInput(f"array {name!r} has dtype {dtype}; object arrays are not accepted.")
            if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                raise InvalidInput(f"array {name!r}: its header promises more data than the member holds.")
            headers[name] = ArrayHeader(name=name, shape=shape, dtype=dtype)
    return headers


def check_headers_against_spec(headers: dict[str, ArrayHeader], spec: list[ArraySpec]) -> None:
    """Every spec array present with its exact shape and dtype, and nothing else."""
    expected = {array.name: array for array in spec}
    missing = [name for name in expected if name not in headers]
    if missing:
        raise InvalidInput(f"missing array(s) {', '.join(missing)}; the spec expects {', '.join(expected)}.")
    unexpected = [name for name in headers if name not in expected]
    if unexpected:
        raise InvalidInput(f"unexpected array(s) {', '.join(unexpected)}; the spec expects {', '.join(expected)}.")
    for name, array in expected.items():
        header = headers[name]
        if header.shape != array.shape:
            raise InvalidInput(
                f"array {name!r}: expected shape {list(array.shape)}, received {list(header.shape)}."
            )
        if header.dtype != np.dtype(array.dtype):
            raise InvalidInput(f"array {name!r}: expected dtype {array.dtype}, received {header.dtype.name}.")


def npz_read(data: bytes) -> dict[str, np.ndarray]:
    """Load every array (no pickles) and refuse NaN or infinite values."""
    arrays: dict[str, np.ndarray] = {}
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        for name in archive.files:
            try:
                array = archive[name]
            except (ValueError, zipfile.BadZipFile, EOFError, OSError) as exc:
                raise InvalidInput(f"array {name!r} could not be read: {exc}") from None
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
                raise InvalidInput(f"array {name!r} holds {bad} non-finite value(s) (NaN or infinity).")
            arrays[name] = array
    return arrays
