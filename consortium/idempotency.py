"""``Idempotency-Key`` support: a retried request gets the original answer, once.

What the key guarantees: within one consortium, the first request with a key is processed
and its answer stored in the same transaction as its effects; a later request with the same
key and the same method, path and body gets that answer back (status 200, since nothing new
was created) and causes no second effect; the same key with a different request is 409.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from consortium.models import Consortium, IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


class IdempotencyConflict(Exception):
    """The key was used before for a different request."""


class InvalidIdempotencyKey(ValueError):
    pass


@dataclass(frozen=True)
class IdempotentRequest:
    consortium: Consortium
    key: str
    fingerprint: str


def request_fingerprint(*, method: str, path: str, body_digest: str) -> str:
    return hashlib.sha256(f"{method}\n{path}\n{body_digest}".encode()).hexdigest()


def idempotent_request(*, consortium: Consortium, raw_key: str | None, method: str, path: str, body_digest: str):
    """The idempotency context of a request, or None when it carries no key."""
    if raw_key is None:
        return None
    key = raw_key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidIdempotencyKey(f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters.")
    return IdempotentRequest(
        consortium=consortium, key=key, fingerprint=request_fingerprint(method=method, path=path, body_digest=body_digest)
    )


def idempotency_replay(request: IdempotentRequest | None) -> IdempotencyRecord | None:
    """The stored answer for a repeat of this request, None for a first request."""
    if request is None:
        return None
    record = (
        IdempotencyRecord.objects.select_for_update()
        .filter(consortium=request.consortium, key=request.key)
        .first()
    )
    if record is None:
        return None
    if record.fingerprint != request.fingerprint:
        raise IdempotencyConflict(
            f"{HEADER} {request.key!r} was already used for a different request; use a new key for a new request."
        )
    return record


def idempotency_store(request: IdempotentRequest | None, *, status: int, body) -> None:
    if request is None:
        return
    IdempotencyRecord.objects.create(
        consortium=request.consortium,
        key=request.key,
        fingerprint=request.fingerprint,
        response_status=status,
        response_body=body,
    )
