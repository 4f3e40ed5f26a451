"""Stored payloads: content-addressed writes, and the integrity check of what is stored.

Payload bytes live in Django's storage under ``payloads/<aa>/<sha256>.npz``; identical
bytes are stored once. The check re-hashes them later, in a task.
"""

from __future__ import annotations

import hashlib
import io
import logging

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from valuation.models import Payload

logger = logging.getLogger(__name__)


class PayloadCorrupted(RuntimeError):
    """Stored bytes no longer hash to their name: a storage fault for operators, not a client error."""


def payload_store(data: bytes, *, sha256: str) -> Payload:
    """The stored payload for these bytes, writing them to storage only the first time."""
    existing = Payload.objects.filter(pk=sha256).first()
    if existing is not None:
        return existing
    name = f"payloads/{sha256[:2]}/{sha256}.npz"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    payload, _ = Payload.objects.get_or_create(sha256=sha256, defaults={"size": len(data), "storage_name": name})
    return payload


def payload_verify(*, sha256: str) -> Payload:
    """Re-hash a stored payload and record its per-array L2 norms.

    Idempotent: running it twice writes the same figures. Governance reads the norms to
    spot an update that is out of scale with the others before any valuation runs.
    """
    payload = Payload.objects.get(pk=sha256)
    with default_storage.open(payload.storage_name, "rb") as stored:
        data = stored.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        logger.error("payload corrupted", extra={"sha256": sha256, "actual": actual})
        raise PayloadCorrupted(f"payload {sha256} in storage now hashes to {actual}")
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        norms = {name: float(np.linalg.norm(archive[name].astype(np.float64))) for name in archive.files}
    Payload.objects.filter(pk=sha256).update(verified_at=timezone.now(), array_norms=norms)
    payload.refresh_from_db()
    return payload
