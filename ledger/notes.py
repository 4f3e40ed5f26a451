"""Checkpoint notes: the signed text a participant keeps, in the C2SP signed-note format.

A checkpoint note is a body of four lines, then an empty line, then one signature line::

    fairshare.local/ledger                       <- origin (also the signing key's name)
    1234                                          <- tree size, decimal
    3q2+7w...=                                    <- Merkle root, base64 (RFC 4648, padded)
    timestamp 2026-03-01T12:00:00.000000Z         <- when it was signed, UTC

    — fairshare.local/ledger AbCd...==            <- em dash, key name, base64(key hash || signature)

The signature is Ed25519 over the body bytes (UTF-8, every line ending in "\\n"); the key
hash is the first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key), as in
golang.org/x/mod/sumdb/note, so standard signed-note tools can check it too.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import format_time, parse_time

ED25519_ALGORITHM = b"\x01"
SIGNATURE_DASH = "\u2014"


class NoteError(ValueError):
    pass


@dataclass(frozen=True)
class SignedCheckpoint:
    origin: str
    tree_size: int
    root: bytes
    time: dt.datetime
    body: str


def key_hash(key_name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(key_name.encode() + b"\n" + ED25519_ALGORITHM + public_key).digest()[:4]


def verifier_key(key_name: str, public_key: bytes) -> str:
    """The ``name+hash+key`` string that signed-note tools take to verify our notes."""
    encoded = base64.b64encode(ED25519_ALGORITHM + public_key).decode()
    return f"{key_name}+{key_hash(key_name, public_key).hex()}+{encoded}"


def checkpoint_body(*, origin: str, tree_size: int, root: bytes, time: dt.datetime) -> str:
    if not origin or "\n" in origin or " " in origin:
        raise ValueError("an origin is one non-empty line without spaces")
    return f"{origin}\n{tree_size}\n{base64.b64encode(root).decode()}\ntimestamp {format_time(time)}\n"


def checkpoint_note(*, origin: str, tree_size: int, root: bytes, time: dt.datetime, key_hash: bytes, signature: bytes) -> str:
    body = checkpoint_body(origin=origin, tree_size=tree_size, root=root, time=time)
    return f"{body}\n{SIGNATURE_DASH} {origin} {base64.b64encode(key_hash + signature).decode()}\n"


def note_verify(note: str, *, public_keys: list[bytes]) -> SignedCheckpoint:
    """Parse a checkpoint note and check that one of ``public_keys`` signed it."""
    body, separator, signatures = note.partition("\n\n")
    if not separator or not body:
        raise NoteError("a note is a body, an empty line and signature lines")
    lines = body.split("\n")
    if len(lines) != 4:
        raise NoteError("a checkpoint body has exactly four lines: origin, size, root, timestamp")
    origin, size_text, root_text, time_text = lines
    body += "\n"
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise NoteError(f"tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
        time = parse_time(time_text.removeprefix("timestamp "))
    except ValueError as exc:
        raise NoteError(f"unreadable root or timestamp: {exc}") from None
    if len(root) != 32 or not time_text.startswith("timestamp "):
        raise NoteError("the root is not a 32-byte hash or the timestamp line is malformed")
    for line in signatures.split("\n"):
        if not line:
            continue
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != SIGNATURE_DASH or name != origin:
            continue
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            continue
        for public_key in public_keys:
            if blob[:4] != key_hash(name, public_key):
                continue
            try:
                Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], body.encode())
            except InvalidSignature:
                raise NoteError("the checkpoint signature does not verify") from None
            return SignedCheckpoint(origin=origin, tree_size=int(size_text), root=root, time=time, body=body)
    raise NoteError("no signature by a trusted ledger key")
