"""The zip container of an uploaded ``.npz`` archive, checked before ``zipfile`` trusts it.

Every member must lie, local header and data, inside the archive before the central
directory, without overlapping another; its local header must match the directory
(signature, name, compression method). Encrypted members, patched data and compression
methods other than stored and deflate are refused (``zipfile`` would inflate bzip2 and
lzma without bounding the output), as are a stored member whose two sizes differ and a
deflated member that declares more than deflate can produce. A directory of more than
:data:`MAX_MEMBERS` entries is refused before ``zipfile`` parses it. Member names are
``<name>.npy`` at the top level, printable, without NUL or path separators, at most
:data:`MAX_NAME_LENGTH` characters, each once. ``valuation/npz.py`` reads the ``.npy``
arrays inside; see its docstring for the whole contract.
"""

from __future__ import annotations

import errno
import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.errors import InvalidInput
from valuation.spec import MAX_ARRAYS, quoted

MAX_NAME_LENGTH = 128  # characters of an array name (the member name without ".npy")
MAX_MEMBERS = MAX_ARRAYS
_DEFLATE_MAX_RATIO = 1032  # deflate expands at most ~1032:1 (258-byte matches in ~2 bits)
_DEFLATE_SLACK = 1024
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader, 30 bytes
_LOCAL_SIGNATURE = b"PK\x03\x04"
_FLAG_ENCRYPTED = 0x1
_FLAG_PATCHED = 0x20
_FLAG_STRONG_ENCRYPTION = 0x40
_FLAG_UTF8 = 0x800
_END_OF_CENTRAL_DIRECTORY_SIZE = 22
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END_SIZE = 56
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_CENTRAL_ENTRY_SIZE = 46
_CENTRAL_SIGNATURE = b"PK\x01\x02"
NOT_AN_NPZ = "the file is not an .npz archive (save it with numpy.savez or numpy.savez_compressed)."


@dataclass(frozen=True)
class ZipMember:
    info: zipfile.ZipInfo
    name: str  # the array name: the member name without ".npy"
    data_end: int  # where its compressed data ends in the archive


class _Buffer(io.BytesIO):
    """An in-memory file that refuses a seek before its start with ``OSError``, as a real
    file does: ``zipfile`` handles ``OSError`` there (a file too short to be an archive),
    whereas ``io.BytesIO`` raises ``ValueError``."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self._size = len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = {io.SEEK_SET: 0, io.SEEK_CUR: self.tell(), io.SEEK_END: self._size}.get(whence, 0)
        if start + offset < 0:
            raise OSError(errno.EINVAL, "seek before the start of the file")
        return super().seek(offset, whence)


@contextmanager
def member_reading(name: str) -> Iterator[None]:
    """The errors that reading a member's bytes can raise, whatever was checked before:
    the data itself is only verified as it is inflated."""
    member = quoted(name + ".npy")
    try:
        yield
    except zlib.error:
        raise InvalidInput(f"member {member}: its compressed (deflate) data is corrupt.") from None
    except EOFError:
        raise InvalidInput(f"member {member} is truncated: its compressed data ends early.") from None
    except zipfile.BadZipFile as exc:
        if str(exc).startswith("Bad CRC-32"):
            raise InvalidInput(f"member {member} fails its CRC-32 check: its data is damaged.") from None
        raise InvalidInput(f"member {member}: the zip structure around it is damaged.") from None


def _directory_is_longer_than(data: bytes, limit: int) -> bool:
    """Whether the zip directory, found and walked as ``zipfile`` finds and walks it, has more
    than ``limit`` entries. ``zipfile`` builds an object per entry before anyone can count
    them: a 64 MB directory of a million entries would cost seconds and hundreds of MB.
    False when the directory cannot be walked: ``zipfile`` then reports the damage itself."""
    last = len(data) - _END_OF_CENTRAL_DIRECTORY_SIZE  # the record is last, or followed by a comment
    end = data.rfind(_END_SIGNATURE, max(0, last - 0xFFFF), last + len(_END_SIGNATURE))
    if end < 0:
        return False
    (size,) = struct.unpack_from("<L", data, end + 12)
    start = end - size
    locator = end - _ZIP64_LOCATOR_SIZE
    if locator >= 0 and data[locator:locator + 4] == _ZIP64_LOCATOR_SIGNATURE:
        record = locator - _ZIP64_END_SIZE
        if record >= 0 and data[record:record + 4] == _ZIP64_END_SIGNATURE:
            (size,) = struct.unpack_from("<Q", data, record + 40)
            start = record - size
    position, entries = start, 0
    while 0 <= position < start + size:
        if position + _CENTRAL_ENTRY_SIZE > len(data) or data[position:position + 4] != _CENTRAL_SIGNATURE:
            return False
        name_length, extra_length, comment_length = struct.unpack_from("<3H", data, position + 28)
        position += _CENTRAL_ENTRY_SIZE + name_length + extra_length + comment_length
        entries += 1
        if entries > limit:
            return True
    return False


def zip_open(data: bytes) -> zipfile.ZipFile:
    if len(data) < _END_OF_CENTRAL_DIRECTORY_SIZE:
        raise InvalidInput(NOT_AN_NPZ)
    if _directory_is_longer_than(data, MAX_MEMBERS):
        raise InvalidInput(
            f"the archive holds more than {MAX_MEMBERS} members; at most {MAX_MEMBERS} arrays are accepted."
        )
    try:
        return zipfile.ZipFile(_Buffer(data))
    except zipfile.BadZipFile as exc:
        if str(exc) == "File is not a zip file":
            raise InvalidInput(NOT_AN_NPZ) from None
        raise InvalidInput("the zip directory of the archive is damaged or truncated.") from None
    except NotImplementedError:  # a directory entry that needs a newer zip version
        raise InvalidInput("the archive uses zip features that are not supported.") from None
    except UnicodeDecodeError:  # a name flagged as UTF-8 that is not
        raise InvalidInput("a member name in the zip directory is not valid UTF-8.") from None


def _array_name(info: zipfile.ZipInfo) -> str:
    filename = info.orig_filename  # zipfile's ``filename`` stops at a NUL; this one does not
    member = quoted(filename)
    if "\x00" in filename:
        raise InvalidInput(f"member {member}: its name contains a NUL character.")
    if not filename.endswith(".npy") or "/" in filename or "\\" in filename:
        raise InvalidInput(f"member {member} is not a top-level .npy array.")
    name = filename[: -len(".npy")]
    if not name:
        raise InvalidInput(f"member {member}: the array has an empty name.")
    if not name.isprintable():
        raise InvalidInput(f"member {member}: its name contains unprintable characters.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"member {member}: array names have at most {MAX_NAME_LENGTH} characters.")
    return name


def _member(data: bytes, start_dir: int, info: zipfile.ZipInfo, name: str) -> ZipMember:
    """Where the member's data lies, after checking its directory entry and local header."""
    member = quoted(info.orig_filename)
    flags = info.flag_bits
    if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise InvalidInput(f"member {member} is encrypted; encrypted archives are not accepted.")
    if flags & _FLAG_PATCHED:
        raise InvalidInput(f"member {member} holds patched data, a zip feature that is not supported.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise InvalidInput(
            f"member {member} uses compression method {info.compress_type}; only stored (0) and deflate (8) "
            "are accepted (as numpy.savez and numpy.savez_compressed write)."
        )
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise InvalidInput(
            f"member {member} is stored uncompressed, but the directory gives it {info.compress_size} bytes "
            f"stored and {info.file_size} bytes uncompressed."
        )
    if (info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + _DEFLATE_SLACK):
        raise InvalidInput(
            f"member {member} declares {info.file_size} bytes uncompressed from {info.compress_size} "
            "compressed bytes, more than deflate can produce."
        )
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > start_dir:
        raise InvalidInput(f"member {member}: its local header lies outside the data part of the archive.")
    (signature, _version, _system, local_flags, local_method, _time, _date, _crc, _csize, _size,
     name_length, extra_length) = _LOCAL_HEADER.unpack_from(data, offset)
    if signature != _LOCAL_SIGNATURE:
        raise InvalidInput(f"member {member}: its local header is missing or damaged.")
    if local_flags & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise InvalidInput(f"member {member} is encrypted; encrypted archives are not accepted.")
    if local_flags & _FLAG_PATCHED:
        raise InvalidInput(f"member {member} holds patched data, a zip feature that is not supported.")
    if local_method != info.compress_type:
        raise InvalidInput(
            f"member {member}: its local header gives compression method {local_method}, "
            f"the directory {info.compress_type}."
        )
    name_start = offset + _LOCAL_HEADER.size
    data_start = name_start + name_length + extra_length
    data_end = data_start + info.compress_size
    if data_end > start_dir:
        raise InvalidInput(f"member {member}: its data runs into the zip directory or past the end of the file.")
    local_name = data[name_start:name_start + name_length]
    try:
        local_name = local_name.decode("utf-8" if local_flags & _FLAG_UTF8 else "cp437")
    except UnicodeDecodeError:
        raise InvalidInput(f"member {member}: the name in its local header is not valid UTF-8.") from None
    if local_name != info.orig_filename:
        raise InvalidInput(
            f"member {member}: its local header names it {quoted(local_name)}; directory and local header must agree."
        )
    return ZipMember(info=info, name=name, data_end=data_end)


def zip_members(archive: zipfile.ZipFile, data: bytes) -> list[ZipMember]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise InvalidInput(f"the archive holds {len(infos)} members; at most {MAX_MEMBERS} arrays are accepted.")
    members: list[ZipMember] = []
    seen: set[str] = set()
    for info in infos:
        name = _array_name(info)
        if name in seen:
            raise InvalidInput(f"array {quoted(name)} appears twice in the archive.")
        seen.add(name)
        members.append(_member(data, archive.start_dir, info, name))
    by_position = sorted(members, key=lambda m: m.info.header_offset)
    for first, second in zip(by_position, by_position[1:]):
        if second.info.header_offset < first.data_end:
            raise InvalidInput(
                f"members {quoted(first.info.orig_filename)} and {quoted(second.info.orig_filename)} "
                "overlap in the archive; each member must have bytes of its own."
            )
    return members


