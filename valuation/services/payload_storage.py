"""``payload_storage_check`` (the ``payload_check`` command): storage against the table.

Like ``verify_ledger`` for the ledger: it lists storage under ``payloads/``, reads the
``Payload`` table in chunks, and reports files without rows (orphans), rows without files
(recoverable when their bytes wait in staging after a crash between COMMIT and publishing),
files whose bytes no longer hash to their name, and stale staging files. With ``repair`` it
publishes recoverable staging files and deletes orphans older than the grace period, and never
touches a file that a row names. The rule it checks is described in ``payloads.py``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.files.storage import Storage, default_storage
from django.utils import timezone

from core.errors import InvalidInput
from valuation.models import Payload
from valuation.services.payloads import (
    PAYLOAD_ROOT,
    PAYLOAD_STAGING_GRACE,
    STAGING_DIR,
    delete_quietly,
    hash_stored,
    is_filesystem,
    publish,
    staging_name_for,
    staging_parse,
)

logger = logging.getLogger(__name__)


@dataclass
class PayloadStorageReport:
    """What ``payload_storage_check`` found and, with ``repair``, what it did about it.

    Problems (each makes the check fail unless repaired): ``orphans`` (files under
    ``payloads/`` that no row names, staging aside), ``missing`` (rows whose file is not
    there, as storage names), ``recoverable`` (of those, the ones whose bytes wait in staging,
    crash after COMMIT: storage name → staged name), ``corrupt`` (files a row names whose
    bytes hash to something else: storage name → actual sha256 or size), ``stale_staging``
    (staged files older than the grace period that complete no row). ``in_flight`` are staged
    files younger than the grace period: uploads in progress, not a problem.
    """

    rows: int = 0
    files: int = 0
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    recoverable: dict[str, str] = field(default_factory=dict)
    corrupt: dict[str, str] = field(default_factory=dict)
    stale_staging: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def remaining(self) -> list[str]:
        """One line per problem that is still there (after repair, when repairing)."""
        done = set(self.published) | set(self.deleted)
        lines = [f"orphan file {name} (no row names it)" for name in self.orphans if name not in done]
        lines += [f"row without file: {name} (no staged copy; restore it from a backup or upload the same bytes "
                  f"again)" for name in self.missing if name not in self.recoverable]
        lines += [f"row without file: {name} (its bytes wait at {staged}; --repair publishes them)"
                  for name, staged in self.recoverable.items() if name not in done]
        lines += [f"corrupt file {name}: {actual}" for name, actual in self.corrupt.items()]
        lines += [f"stale staging file {name} (completes no row)" for name in self.stale_staging if name not in done]
        lines += [f"repair failed for {name}: {error}" for name, error in self.failed.items()]
        return lines

    @property
    def ok(self) -> bool:
        return not self.remaining


def _walk(storage: Storage, directory: str) -> Iterator[str]:
    try:
        directories, files = storage.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in sorted(files):
        yield f"{directory}/{name}"
    for name in sorted(directories):
        yield from _walk(storage, f"{directory}/{name}")


def _age(storage: Storage, name: str, now: datetime) -> timedelta | None:
    """How old a file is, or None where the storage cannot tell."""
    parsed = staging_parse(name) if name.startswith(f"{STAGING_DIR}/") else None
    if parsed is not None:
        return now - parsed[1]
    try:
        return now - storage.get_modified_time(name)
    except (NotImplementedError, OSError):
        return None


def _remove_orphan(storage: Storage, name: str) -> bool:
    """Delete a final-area file no row names; False when a row appeared meanwhile (kept)."""
    sha256 = name.rsplit("/", 1)[-1].split(".")[0]
    if is_filesystem(storage):
        # Move it aside first: an upload that commits now publishes its own staged copy to the
        # final name, so whatever we find afterwards in the table is safe to act on.
        aside = staging_name_for(sha256 if staging_parse(f"{sha256}.0.0.npz") else "0" * 64)
        os.makedirs(os.path.dirname(storage.path(aside)), exist_ok=True)
        os.replace(storage.path(name), storage.path(aside))
        if Payload.objects.filter(storage_name=name).exists():
            try:  # put it back, unless the new upload's own copy is already there
                os.link(storage.path(aside), storage.path(name))
            except FileExistsError:
                pass
            delete_quietly(storage, aside)
            return False
        delete_quietly(storage, aside)
        return True
    if Payload.objects.filter(storage_name=name).exists():
        return False
    storage.delete(name)
    return True


def payload_storage_check(
    *, repair: bool = False, grace: timedelta = PAYLOAD_STAGING_GRACE, chunk_size: int = 1000
) -> PayloadStorageReport:
    """Compare payload storage with the ``Payload`` table; with ``repair``, fix what is safe.

    Storage is listed first, then the table is read in chunks of ``chunk_size`` rows: a file
    is published only after its row committed, so every listed file's row is visible to the
    later reads, and a file without a row is a real orphan. A row whose file was not listed
    is looked up once more at the end (an upload may have published it meanwhile).

    Repair publishes a staged file that completes a row without its file (after checking
    its hash), deletes orphans and stale staged files older than ``grace``, and never touches
    a file that a row names: a corrupt file and a row whose bytes are nowhere are reported
    for an operator (restore from a backup, or upload the same bytes again).
    """
    if chunk_size < 1:
        raise InvalidInput(f"The chunk size is at least 1, not {chunk_size}.", field="chunk_size")
    if grace < timedelta(0):
        raise InvalidInput("The grace period cannot be negative.", field="grace")
    storage = default_storage
    now = timezone.now()
    report = PayloadStorageReport()
    listed = list(_walk(storage, PAYLOAD_ROOT))
    staging = [name for name in listed if name.startswith(f"{STAGING_DIR}/")]
    unclaimed = {name for name in listed if not name.startswith(f"{STAGING_DIR}/")}
    report.files = len(unclaimed)

    missing: dict[str, str] = {}  # sha256 → storage name, rows whose file was not listed
    last = None
    while True:
        rows = Payload.objects.order_by("sha256")
        if last is not None:
            rows = rows.filter(sha256__gt=last)
        chunk = list(rows.values_list("sha256", "size", "storage_name")[:chunk_size])
        if not chunk:
            break
        last = chunk[-1][0]
        for sha256, size, name in chunk:
            report.rows += 1
            if name not in unclaimed:
                missing[sha256] = name
                continue
            unclaimed.discard(name)
            try:
                actual, actual_size = hash_stored(storage, name)
            except FileNotFoundError:
                missing[sha256] = name
                continue
            if actual != sha256:
                report.corrupt[name] = f"its bytes hash to {actual}"
            elif actual_size != size:
                report.corrupt[name] = f"{actual_size} bytes, the row says {size}"
    for sha256, name in list(missing.items()):
        if storage.exists(name):  # published after the listing
            del missing[sha256]
            report.files += 1

    report.orphans = sorted(unclaimed)
    report.missing = sorted(missing.values())

    for staged in staging:
        parsed = staging_parse(staged)
        sha256 = parsed[0] if parsed else None
        if sha256 in missing and missing[sha256] not in report.recoverable:
            try:
                actual, actual_size = hash_stored(storage, staged)
            except FileNotFoundError:  # its upload published it meanwhile
                continue
            if actual == sha256:
                report.recoverable[missing[sha256]] = staged
                continue
        age = _age(storage, staged, now)
        if age is not None and age < grace:
            report.in_flight.append(staged)
        else:
            report.stale_staging.append(staged)

    if repair:
        _repair(storage, report, now=now, grace=grace)
    return report


def _repair(storage: Storage, report: PayloadStorageReport, *, now: datetime, grace: timedelta) -> None:
    for name, staged in report.recoverable.items():
        try:
            publish(storage, staged, name)
        except Exception as exc:
            report.failed[name] = str(exc)
            continue
        logger.warning("payload_check published %s from %s", name, staged)
        report.published.append(name)
    for name in report.orphans:
        age = _age(storage, name, now)
        if age is not None and age < grace:
            continue  # it is reported, but it might be younger than a clock skew
        try:
            removed = _remove_orphan(storage, name)
        except FileNotFoundError:
            removed = True
        except Exception as exc:
            report.failed[name] = str(exc)
            continue
        if removed:
            logger.warning("payload_check deleted orphan %s", name)
            report.deleted.append(name)
            report.files -= 1
    for staged in report.stale_staging:
        delete_quietly(storage, staged)
        logger.warning("payload_check deleted stale staging file %s", staged)
        report.deleted.append(staged)
