"""``Idempotency-Key`` support: a retried request gets the original answer, once.

What the key guarantees: within one scope (a consortium), the first request with a key is
processed and its answer stored in the same transaction as its effects; a later request
with the same key and the same method, path and body gets that answer back (status 200,
since nothing new was created) and causes no second effect; the same key with a different
request is 409.

The records are rows of the model named by ``settings.IDEMPOTENCY_RECORD_MODEL`` (the
tenancy app owns it, since records belong to a consortium); it extends
:class:`IdempotencyRecordBase` and names its scope field in ``scope_field``. Any write of
any app goes through :class:`IdempotentWrite`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from rest_framework import status
from rest_framework.response import Response

from core.errors import Conflict, InvalidInput

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


class IdempotencyRecordBase(models.Model):
    """The first answer to a request sent with an ``Idempotency-Key``, replayed on repeats.

    The fingerprint covers method, path and body digest: the same key with another
    request is refused (409) instead of silently returning an unrelated answer.
    """

    scope_field = ""  # the concrete model's foreign key to what a key is unique within

    key = models.CharField(max_length=MAX_KEY_LENGTH)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


def _record_model() -> type[IdempotencyRecordBase]:
    return apps.get_model(settings.IDEMPOTENCY_RECORD_MODEL)


@dataclass(frozen=True)
class IdempotentRequest:
    scope: models.Model
    key: str
    fingerprint: str


def request_fingerprint(*, method: str, path: str, body_digest: str) -> str:
    return hashlib.sha256(f"{method}\n{path}\n{body_digest}".encode()).hexdigest()


def body_digest(*parts: bytes | str) -> str:
    """SHA-256 over the parts of a request body, separated so that ("ab", "c") != ("a", "bc")."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def idempotent_request(*, scope: models.Model, raw_key: str | None, method: str, path: str, body_digest: str):
    """The idempotency context of a request, or None when it carries no key."""
    if raw_key is None:
        return None
    key = raw_key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"{HEADER} must be 1-{MAX_KEY_LENGTH} printable characters.", field=HEADER)
    return IdempotentRequest(
        scope=scope, key=key, fingerprint=request_fingerprint(method=method, path=path, body_digest=body_digest)
    )


def idempotency_replay(request: IdempotentRequest | None) -> IdempotencyRecordBase | None:
    """The stored answer for a repeat of this request, None for a first request."""
    if request is None:
        return None
    model = _record_model()
    record = model.objects.select_for_update().filter(**{model.scope_field: request.scope, "key": request.key}).first()
    if record is None:
        return None
    if record.fingerprint != request.fingerprint:
        raise Conflict(
            f"{HEADER} {request.key!r} was already used for a different request; use a new key for a new request."
        )
    return record


def idempotency_store(request: IdempotentRequest | None, *, status: int, body) -> None:
    if request is None:
        return
    model = _record_model()
    model.objects.create(
        **{model.scope_field: request.scope},
        key=request.key,
        fingerprint=request.fingerprint,
        response_status=status,
        response_body=body,
    )


class IdempotentWrite:
    """One API write with ``Idempotency-Key`` replay, for any service of any app.

    ``IdempotentWrite(request, scope=consortium, body_digest=...).run(write, render)`` runs
    ``write()`` → ``(obj, created)`` and ``render(obj)`` → body in one transaction with the
    idempotency record, and answers 201 when something was created, else 200. Service errors
    propagate (and roll everything back); the exception handler answers them.
    """

    def __init__(self, request, *, scope: models.Model, body_digest: str):
        self.idempotent = idempotent_request(
            scope=scope, raw_key=request.headers.get(HEADER),
            method=request.method, path=request.path, body_digest=body_digest,
        )

    def run(
        self,
        write: Callable[[], tuple[Any, bool]],
        render: Callable[[Any], Any],
        *,
        created_status: int = status.HTTP_201_CREATED,
    ) -> Response:
        """``created_status`` answers a first request that created something (202 for work
        that goes on after the answer)."""
        with transaction.atomic():
            replay = idempotency_replay(self.idempotent)
            if replay is not None:
                return Response(replay.response_body, status=status.HTTP_200_OK)
            obj, created = write()
            body = render(obj)
            code = created_status if created else status.HTTP_200_OK
            idempotency_store(self.idempotent, status=code, body=body)
            return Response(body, status=code)
