"""Stored payloads: content-addressed files that exist only once their row has committed.

Payload bytes live in Django's storage under ``payloads/<aa>/<sha256>.npz``; identical bytes
are stored once. The integrity task re-hashes them later (``payload_verify``), and
``payload_storage_check`` (the ``payload_check`` command) compares storage with the table.

The rule (issue #9, "nothing half-written")
===========================================

*A file exists under its final name only if a committed ``Payload`` row names it*, and no
failed upload leaves anything behind. Storage is not transactional, so an upload goes in
three steps:

1. **Stage, before the transaction** (``payload_staging``): the bytes are written (and, on a
   file system, fsynced) to a private name, ``payloads/staging/<sha256>.<unix time>.<random>.npz``.
   They are durable before anything is committed, and no reader looks there.
2. **Row, in the transaction** (``payload_store``): the ``Payload`` row is written with its
   *final* ``storage_name``, with the upload's own row and audit event.
3. **Publish, after COMMIT** (``payload_publish_on_commit``): one ``transaction.on_commit``
   callback moves the staged file to its final name and only then enqueues what must read it
   (the verification task), so the task always finds the file. On ``FileSystemStorage`` the
   move is one ``os.replace`` inside ``MEDIA_ROOT`` (atomic: a reader sees no file or the
   whole file); with another storage class it is open / save / delete through the storage API,
   or just a delete of the staged copy when the final file is already there (same name, same
   bytes).

If the action fails, the staged file is deleted: at once when an exception leaves the
service before the callback was registered (a refused slot, a database error, a failing
audit record); afterwards, when Django discards the callback because the transaction (the
service's or any enclosing one, such as the ``Idempotency-Key`` transaction) rolls back.
Django has no rollback hook, so the staged file is tied to the callback with
``weakref.finalize``: a callback dropped without running is a rolled-back transaction, and
its finalizer deletes the file (immediately under CPython's reference counting).

Why this and not "write the final file, collect orphans later": the final name is shared by
every upload of the same bytes. Deleting it on rollback races with a concurrent upload of the
same bytes that is about to commit a row naming it (a row without a file), and leaving it to a
collector breaks the rule until the collector runs. Staging files are private to one upload,
so deleting one is always safe, and publishing is idempotent (identical bytes under one name):
concurrent uploads of the same bytes to different slots, a repeat, and the repair below may
all publish the same file in any order.

Crash between COMMIT and publish
--------------------------------

If the process dies after COMMIT but before the callback ran, the row exists and its bytes
are still at their staging name. ``payload_check`` reports the row as "missing, recoverable
from staging" and ``payload_check --repair`` publishes the staged copy after checking that it
hashes to the row's sha256. A repeat upload of the same bytes also restores a missing file
(``payload_restore``): the client holds the bytes, and their hash proves them.

Staged files that complete no row are orphans once they are older than the grace period
(``PAYLOAD_STAGING_GRACE``, an hour): a younger one may belong to an upload in flight. Their
age is read from their name, so any storage class works.

Limits: an ``on_commit`` callback registered *earlier in the same transaction* by other code
that raises (non-robust) makes Django drop the callbacks after it, ours included; the staged
file is then deleted as if the transaction had rolled back, and the committed row has no
file (``payload_check`` reports it; a repeat upload restores it). The services register their
callback as ``robust``, so one upload's failing callback never drops another's. With a storage
class other than ``FileSystemStorage``, removing an orphan races (narrowly) with a new upload
of the same bytes that commits and publishes in between the check and the delete; on a file
system the orphan is moved aside first and restored if a row appeared, which closes the race.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.db import transaction
from django.utils import timezone
from django.utils._os import safe_makedirs

from valuation.models import Payload

logger = logging.getLogger(__name__)

PAYLOAD_ROOT = "payloads"
STAGING_DIR = f"{PAYLOAD_ROOT}/staging"
# A staged file younger than this may belong to an upload still in its transaction.
PAYLOAD_STAGING_GRACE = timedelta(hours=1)
_READ_CHUNK = 1024 * 1024


class PayloadCorrupted(RuntimeError):
    """Stored bytes no longer hash to their name: a storage fault for operators, not a client error."""


def payload_name(sha256: str) -> str:
    """The final storage name of the payload with this SHA-256."""
    return f"{PAYLOAD_ROOT}/{sha256[:2]}/{sha256}.npz"


def staging_name_for(sha256: str) -> str:
    return f"{STAGING_DIR}/{sha256}.{int(timezone.now().timestamp())}.{secrets.token_hex(8)}.npz"


def staging_parse(name: str) -> tuple[str, datetime] | None:
    """(sha256, staged at) of a staging file's name, or None for a name we did not write."""
    parts = name.rsplit("/", 1)[-1].split(".")
    if len(parts) != 4 or parts[3] != "npz" or len(parts[0]) != 64 or not parts[1].isdigit():
        return None
    try:
        int(parts[0], 16)
        return parts[0], datetime.fromtimestamp(int(parts[1]), tz=dt_timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


# Storage primitives: one code path for a file system (atomic rename, fsync), one for the rest.


def is_filesystem(storage: Storage) -> bool:
    return isinstance(storage, FileSystemStorage)


def _fsync(path: str, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(storage: Storage, name: str, data: bytes) -> str:
    saved = storage.save(name, ContentFile(data))
    if is_filesystem(storage):
        path = storage.path(saved)
        _fsync(path)
        _fsync(os.path.dirname(path), directory=True)
    return saved


def delete_quietly(storage: Storage, name: str) -> None:
    """Delete ``name`` if it is there; log, never raise (it runs in cleanups and finalizers)."""
    try:
        storage.delete(name)
    except FileNotFoundError:
        pass
    except Exception:
        logger.exception("could not delete %s from payload storage; payload_check will report it", name)


def publish(storage: Storage, staging_name: str, name: str) -> None:
    """Put the staged bytes under their final name; the staged file is gone afterwards.

    Idempotent and safe to run concurrently for the same bytes: the final name only ever
    holds these bytes, whoever publishes them first.
    """
    if is_filesystem(storage):
        source, target = storage.path(staging_name), storage.path(name)
        directory = os.path.dirname(target)
        if storage.directory_permissions_mode is not None:
            safe_makedirs(directory, storage.directory_permissions_mode, exist_ok=True)
        else:
            os.makedirs(directory, exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            if os.path.exists(target):  # someone else (payload_check --repair) published it first
                return
            raise
        _fsync(directory, directory=True)
        return
    if not storage.exists(name):
        with storage.open(staging_name, "rb") as staged:
            saved = storage.save(name, staged)
        if saved != name:  # a concurrent publisher won; ours is a second copy of the same bytes
            delete_quietly(storage, saved)
    delete_quietly(storage, staging_name)


def hash_stored(storage: Storage, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with storage.open(name, "rb") as stored:
        for chunk in stored.chunks(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# Uploads: stage, row, publish.


@dataclass(eq=False)
class StagedPayload:
    """Bytes on their way into storage (see the module docstring).

    ``staging_name`` is None when nothing needs publishing: a committed row already names a
    file that is in place. ``name`` is where the row says the file lives.
    """

    sha256: str
    size: int
    name: str
    staging_name: str | None
    storage: Storage
    handed_over: bool = False


@dataclass(eq=False)
class _Publication:
    """What the finalizer of an ``on_commit`` callback needs; never refers to the callback."""

    storage: Storage
    staging_name: str | None
    name: str
    sha256: str
    ran: bool = False


class _OnCommit:
    """The one callback per upload: publish, then ``then`` (the verification task)."""

    def __init__(self, publication: _Publication, then: Callable[[], object] | None):
        self.publication = publication
        self.then = then

    def run(self) -> None:
        publication = self.publication
        publication.ran = True
        if publication.staging_name is not None:
            try:
                publish(publication.storage, publication.staging_name, publication.name)
            except Exception:
                logger.exception(
                    "payload %s is committed but not published; its bytes wait at %s: run "
                    "`manage.py payload_check --repair`", publication.sha256, publication.staging_name,
                )
        if self.then is not None:
            self.then()


def _discard_unless_published(publication: _Publication) -> None:
    """Finalizer of a callback: it was dropped without running, so its transaction rolled back."""
    if not publication.ran and publication.staging_name is not None:
        delete_quietly(publication.storage, publication.staging_name)


def _stored_name(sha256: str, storage: Storage) -> str | None:
    """The storage name of a committed row for ``sha256`` whose file is in place, else None."""
    name = Payload.objects.filter(pk=sha256).values_list("storage_name", flat=True).first()
    return name if name is not None and storage.exists(name) else None


@contextmanager
def payload_staging(data: bytes, *, sha256: str) -> Iterator[StagedPayload]:
    """Stage ``data`` for one upload; call before the transaction, hand over inside it.

    Inside the block the service writes its rows (``payload_store``) and, last in its
    transaction, registers the publication (``payload_publish_on_commit``). Leaving the block
    without that hand-over, by an exception or a refusal that returns early, deletes the staged
    file at once; after it, the transaction's outcome decides.
    """
    storage = default_storage
    existing = Payload.objects.filter(pk=sha256).values_list("storage_name", flat=True).first()
    name = existing or payload_name(sha256)
    if existing is not None and storage.exists(existing):
        staged = StagedPayload(sha256=sha256, size=len(data), name=name, staging_name=None, storage=storage)
    else:
        staging_name = _write_durably(storage, staging_name_for(sha256), data)
        staged = StagedPayload(sha256=sha256, size=len(data), name=name, staging_name=staging_name, storage=storage)
    try:
        yield staged
    finally:
        if not staged.handed_over and staged.staging_name is not None:
            delete_quietly(storage, staged.staging_name)


def payload_store(staged: StagedPayload) -> Payload:
    """The ``Payload`` row for staged bytes, created in the caller's transaction if new.

    The row names the final file, which appears only once this transaction commits and
    ``payload_publish_on_commit`` has run.
    """
    payload, created = Payload.objects.get_or_create(
        sha256=staged.sha256, defaults={"size": staged.size, "storage_name": staged.name}
    )
    if not created and payload.storage_name != staged.name:
        # The row appeared between staging and now (a concurrent upload of the same bytes).
        staged.name = payload.storage_name
    return payload


def payload_publish_on_commit(staged: StagedPayload, *, then: Callable[[], object] | None = None) -> None:
    """After COMMIT: publish the staged file, then call ``then``; on rollback: delete it.

    Register it last in the transaction that writes the rows: one robust ``on_commit``
    callback, so a failure in ``then`` (a broker that is down) is logged and never keeps
    another upload's file from being published.
    """
    staged.handed_over = True
    if staged.staging_name is None and then is None:
        return
    publication = _Publication(storage=staged.storage, staging_name=staged.staging_name, name=staged.name,
                               sha256=staged.sha256)
    callback = _OnCommit(publication, then)
    weakref.finalize(callback, _discard_unless_published, publication)
    transaction.on_commit(callback.run, robust=True)


def payload_restore(payload: Payload, data: bytes) -> None:
    """Restore a committed payload's missing file from a repeat upload of its bytes.

    ``data`` must hash to ``payload.sha256`` (the caller computed that hash from it). The file
    is published after the caller's transaction commits; nothing happens when it is in place.
    """
    if default_storage.exists(payload.storage_name):
        return
    if payload.sha256 != hashlib.sha256(data).hexdigest():
        raise ValueError("payload_restore needs the bytes the payload was named after")
    logger.warning("payload %s had no file at %s; a repeat upload restores it", payload.sha256, payload.storage_name)
    with payload_staging(data, sha256=payload.sha256) as staged:
        payload_publish_on_commit(staged)


def payload_bytes(*, sha256: str, storage_name: str) -> bytes:
    """A stored payload's bytes, checked against its hash (PayloadCorrupted if they differ)."""
    with default_storage.open(storage_name, "rb") as stored:
        data = stored.read()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        logger.error("payload corrupted", extra={"sha256": sha256, "actual": actual})
        raise PayloadCorrupted(f"stored payload {sha256} now hashes to {actual[:12]}…; restore it from a backup")
    return data


def payload_verify(*, sha256: str) -> Payload:
    """Re-hash a stored payload and record its per-array L2 norms.

    Idempotent: running it twice writes the same figures. Governance reads the norms to
    spot an update that is out of scale with the others before any valuation runs.
    """
    payload = Payload.objects.get(pk=sha256)
    data = payload_bytes(sha256=sha256, storage_name=payload.storage_name)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        norms = {name: float(np.linalg.norm(archive[name].astype(np.float64))) for name in archive.files}
    Payload.objects.filter(pk=sha256).update(verified_at=timezone.now(), array_norms=norms)
    payload.refresh_from_db()
    return payload
