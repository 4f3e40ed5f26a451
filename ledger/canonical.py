"""The bytes a ledger entry is: its JSON document in RFC 8785 canonical form.

An entry's leaf hash is ``SHA-256(0x00 || canonical bytes)`` (RFC 9162), and the document
holds the previous entry's leaf hash, so every entry commits to all before it. The document
(format version 1) has exactly these members::

    v                 1
    seq               the entry's sequence number = its leaf index, from 0
    prev              hex leaf hash of entry seq-1; 64 zeros for entry 0
    time              UTC, RFC 3339 with microseconds: "2026-03-01T12:00:00.000000Z"
    kind              "transaction" or "record"
    consortium        the consortium's UUID
    reference         {"type": "revenue_pool" | "statement" | ..., "id": "..."}
    participants      slugs of the participants it concerns, sorted, no duplicates
    actor             who appended it, e.g. "user:finance@demo.test"
    idempotency_key   the caller's key, or null
    body              a JSON object (no floats: money and measures travel as strings)
    postings          [{"account", "amount", "currency"}, ...] in order; [] for a record

Amounts are strings with exactly the currency's minor-unit decimals ("-250000.00").
This module only depends on the standard library and ``rfc8785``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

import rfc8785

FORMAT_VERSION = 1
GENESIS_PREV = bytes(32)
MAX_SAFE_INTEGER = 2**53 - 1  # beyond this JSON numbers are not exact in every reader
MAX_BODY_DEPTH = 32
MAX_CANONICAL_BYTES = 64 * 1024


class InvalidBody(ValueError):
    pass


def format_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("ledger times are timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    if len(text) != 27 or text[10] != "T" or text[-1] != "Z":
        raise ValueError(f"not a ledger time: {text!r}")
    return dt.datetime.fromisoformat(text)


def check_json_value(value, path: str = "body", depth: int = 0) -> None:
    """Raise InvalidBody unless ``value`` is JSON that canonicalises exactly everywhere."""
    if depth > MAX_BODY_DEPTH:
        raise InvalidBody(f"{path}: nested deeper than {MAX_BODY_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidBody(f"{path}: integer {value} is beyond ±2^53-1; send it as a string")
        return
    if isinstance(value, float):
        raise InvalidBody(f"{path}: floats are not allowed in the ledger; send {value!r} as a string")
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            check_json_value(item, f"{path}[{position}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidBody(f"{path}: object keys are strings, not {type(key).__name__}")
            _check_text(key, f"{path} key")
            check_json_value(item, f"{path}.{key}", depth + 1)
        return
    raise InvalidBody(f"{path}: {type(value).__name__} is not a JSON value (use a string for Decimal, dates, ids)")


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidBody(f"{path}: text with an unpaired surrogate cannot be stored") from None


def entry_document(
    *,
    seq: int,
    prev_hash: bytes,
    time: dt.datetime,
    kind: str,
    consortium_id: str,
    reference_type: str,
    reference_id: str,
    participants: Iterable[str],
    actor: str,
    idempotency_key: str | None,
    body: dict,
    postings: Iterable[tuple[str, str, str]],
) -> dict:
    """The entry's document; ``postings`` are (account, amount text, currency) triples."""
    return {
        "v": FORMAT_VERSION,
        "seq": seq,
        "prev": prev_hash.hex(),
        "time": format_time(time),
        "kind": kind,
        "consortium": str(consortium_id),
        "reference": {"type": reference_type, "id": reference_id},
        "participants": sorted(set(participants)),
        "actor": actor,
        "idempotency_key": idempotency_key,
        "body": body,
        "postings": [{"account": a, "amount": amount, "currency": c} for a, amount, c in postings],
    }


def canonical_bytes(document) -> bytes:
    """RFC 8785 bytes of a value that passed ``check_json_value`` (no floats, safe integers).

    For such values whose text is ASCII, RFC 8785 is exactly ``json.dumps`` with sorted keys
    and no spaces (in ASCII, code point order is UTF-16 order and the escapes agree); that is
    several times faster than ``rfc8785``, which handles everything else.
    """
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode() if text.isascii() else rfc8785.dumps(document)


def document_from_bytes(data: bytes) -> dict:
    return json.loads(data)


def _no_floats(text: str):
    raise InvalidBody(f"the number {text} is not allowed in a ledger entry")


def document_parse_strict(data: bytes):
    """Parse entry bytes, refusing floats, NaN and Infinity (they never enter the ledger)."""
    return json.loads(data, parse_float=_no_floats, parse_constant=_no_floats)


def is_canonical(data: bytes, document) -> bool:
    """Whether ``data`` is the RFC 8785 form of ``document`` (as parsed strictly from it).

    ``document`` must come from ``document_parse_strict`` (so it holds no floats).
    """
    try:
        return canonical_bytes(document) == data
    except (rfc8785.CanonicalizationError, ValueError):
        return False


# The members of a document that say *what* was recorded, as opposed to where in the chain
# and when; an idempotent retry must repeat exactly these.
CONTENT_MEMBERS = ("kind", "consortium", "reference", "participants", "body", "postings")


def content_of(document: dict) -> dict:
    return {name: document[name] for name in CONTENT_MEMBERS}
