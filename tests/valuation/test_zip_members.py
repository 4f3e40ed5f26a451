"""The zip container of an upload (valuation/zip_members.py): one named test per defect class.

Every refusal must be an explicit one, never the last resort (see test_npz.py).
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest

from core.errors import InvalidInput
from tests.valuation.npz_archives import (
    LIMIT,
    LOGISTIC,
    assert_explicit,
    get_field,
    layout,
    logistic,
    npy,
    outcome,
    raw_zip,
    refused,
    replace_in_names,
    set_field,
    zip_of,
)
from valuation.npz import npz_inspect, npz_read
from valuation.zip_members import MAX_MEMBERS, MAX_NAME_LENGTH


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
