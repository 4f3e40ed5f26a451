"""Uploads, failures and storage views shared by the payload-storage tests.

Not a test module: ``test_payload_storage.py`` (publishing after COMMIT, failures that leave
nothing, upload sequences) and ``test_payload_check.py`` (the ``payload_check`` command)
share these. Tests that use them commit for real and look at ``MEDIA_ROOT`` itself, which
``tests/conftest.py`` gives each test.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction

from consortium.audit import audit_record
from consortium.models import AuditEvent
from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes, validation_arrays
from valuation import services
from valuation.models import GlobalWeights, ParticipantUpdate, Payload, TrainingRun, ValidationSet
from valuation.services import uploads
from valuation.services.payloads import payload_name
from valuation.tasks import payload_verify_task

commits = pytest.mark.django_db(transaction=True)
HOUR = 3600


class Injected(RuntimeError):
    """A failure planted by a test."""


class InjectedDatabaseError(DatabaseError):
    """A database failure planted by a test."""


# What is on disk


def media_files() -> list[str]:
    """Every file under MEDIA_ROOT, as storage names (read from the file system, not the storage API)."""
    root = Path(django_settings.MEDIA_ROOT)
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def staged_files() -> list[str]:
    return [name for name in media_files() if name.startswith("payloads/staging/")]


def published_files() -> list[str]:
    return [name for name in media_files() if name.startswith("payloads/") and not name.startswith("payloads/staging/")]


def assert_consistent() -> None:
    """The rule of issue #9, checked against the file system directly."""
    rows = dict(Payload.objects.values_list("storage_name", "sha256"))
    files = media_files()
    published = [name for name in files if not name.startswith("payloads/staging/")]
    assert [name for name in files if name.startswith("payloads/staging/")] == [], "a staged file outlived its upload"
    assert sorted(rows) == published, "a row without its file, or a file without its row"
    for name, sha256 in rows.items():
        assert name == payload_name(sha256)  # one file per sha256, at its content address
        assert hashlib.sha256(default_storage.open(name).read()).hexdigest() == sha256


def state() -> tuple:
    """Every row an upload may write, and every file."""
    return (Payload.objects.count(), GlobalWeights.objects.count(), ParticipantUpdate.objects.count(),
            ValidationSet.objects.count(), AuditEvent.objects.count(), media_files())


# Uploads through the services


def new_run(consortium, actor) -> TrainingRun:
    return services.training_run_create(actor=actor, consortium=consortium, name=f"run-{uuid.uuid4().hex[:12]}",
                                        model_family="logistic", task="binary", metric="neg_log_loss",
                                        parameter_spec=LOGISTIC_SPEC)


def upload(kind: str, run: TrainingRun, actor, data: bytes, *, round: int = 0, participant=None,
           num_examples: int = 10):
    if kind == "update":
        participant = participant or run.consortium.participants.order_by("slug").first()
        return services.update_upload(actor=actor, training_run=run, round=round, participant=participant, data=data,
                                      num_examples=num_examples)
    if kind == "weights":
        return services.global_weights_upload(actor=actor, training_run=run, round=round, data=data)
    return services.validation_set_upload(actor=actor, training_run=run, data=data)


ROW_MODEL = {"update": ParticipantUpdate, "weights": GlobalWeights, "validation": ValidationSet}
KINDS = list(ROW_MODEL)


def valid_bytes(kind: str, seed: int) -> bytes:
    if kind == "validation":
        return npz_bytes(**validation_arrays(rows=20, seed=seed))
    return npz_bytes(**logistic_arrays(seed))


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc

    return fail


def _audit_then_fail(*args, **kwargs):
    audit_record(*args, **kwargs)
    raise Injected("after every write of the upload")


def _hand_over_then_fail(staged):
    uploads.payload_publish_on_commit(staged)
    raise Injected("after the publication was registered")


@contextmanager
def injected(failure: str, kind: str, competitor=None):
    """Make the next upload fail in the way ``failure`` names (a context around the call)."""
    with ExitStack() as stack:
        patch = stack.enter_context
        if failure == "payload_row":
            patch(mock.patch.object(Payload, "save", _raise(InjectedDatabaseError("payload row"))))
        elif failure == "upload_row":
            patch(mock.patch.object(ROW_MODEL[kind], "save", _raise(InjectedDatabaseError("upload row"))))
        elif failure == "audit":
            patch(mock.patch.object(uploads, "audit_record", _raise(Injected("audit log unavailable"))))
        elif failure == "after_write":
            patch(mock.patch.object(uploads, "audit_record", _audit_then_fail))
        elif failure == "hand_over_then_fail":
            patch(mock.patch.object(uploads, "_publish_and_verify", _hand_over_then_fail))
        elif failure == "race":
            # A concurrent upload fills the slot after our check found it empty, before our insert.
            original, done = uploads._check_parameter_arrays, []

            def check_then_lose_the_race(training_run, data):
                original(training_run, data)
                if not done:
                    done.append(True)
                    competitor()

            patch(mock.patch.object(uploads, "_check_parameter_arrays", check_then_lose_the_race))
        yield


def attempt(failure: str, call):
    """Run ``call`` under an enclosing transaction that fails when ``failure`` says so."""
    if failure == "outer_rollback":  # the service succeeded; its caller's transaction did not
        with pytest.raises(Injected), transaction.atomic():
            call()
            raise Injected("after the service returned")
        return None
    if failure == "set_rollback":  # rolled back without an exception
        with transaction.atomic():
            result = call()
            transaction.set_rollback(True)
        return result
    return call()


def check(*args) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("payload_check", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def plant(name: str, data: bytes, *, age: int = 0) -> str:
    path = Path(django_settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return name


def staging(data: bytes, *, age: int) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    return plant(f"payloads/staging/{sha256}.{int(time.time()) - age}.{uuid.uuid4().hex[:16]}.npz", data)


def crash_after_commit(kind, run, actor, data, **kwargs):
    """An upload that commits and then dies before publishing: the row exists, the bytes are staged."""
    with mock.patch("valuation.services.payloads.publish", _raise(Injected("killed after COMMIT"))), \
            mock.patch.object(payload_verify_task, "delay"):
        upload(kind, run, actor, data, **kwargs)
