"""Tasks of the valuation app, in-process and with a real worker on Redis."""

import time
import uuid
from unittest import mock

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from config.celery import app as celery_app
from consortium.access import Principal
from tests.valuation.conftest import logistic_arrays, npz_bytes
from valuation.models import Payload
from valuation.services import payload_verify, update_upload
from valuation.services.payloads import PayloadCorrupted
from valuation.tasks import payload_verify_task


def _put(coordinator, training_run, seed=0):
    data = npz_bytes(**logistic_arrays(seed))
    response = coordinator.put(f"/api/v1/training-runs/{training_run.pk}/rounds/0/updates/alpha",
                               {"file": SimpleUploadedFile("u.npz", data), "num_examples": 5}, format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["sha256"]


def _upload(coordinator, training_run, capture, seed=0):
    """An accepted upload, its commit callbacks run (the file is published) but its
    verification task not enqueued: the test runs the verification itself."""
    with mock.patch.object(payload_verify_task, "delay") as delay, capture(execute=True):
        sha256 = _put(coordinator, training_run, seed)
    delay.assert_called_once_with(sha256)
    return sha256


@pytest.mark.django_db
def test_verification_is_idempotent(coordinator, training_run, django_capture_on_commit_callbacks):
    sha256 = _upload(coordinator, training_run, django_capture_on_commit_callbacks)
    first = payload_verify(sha256=sha256)
    second = payload_verify(sha256=sha256)
    assert first.array_norms == second.array_norms
    assert set(second.array_norms) == {"coef", "intercept"}


@pytest.mark.django_db
def test_verification_detects_bytes_changed_in_storage(coordinator, training_run,
                                                       django_capture_on_commit_callbacks):
    sha256 = _upload(coordinator, training_run, django_capture_on_commit_callbacks)
    payload = Payload.objects.get(pk=sha256)
    path = default_storage.path(payload.storage_name)
    with open(path, "r+b") as stored:
        stored.seek(-1, 2)
        stored.write(b"\xff")
    with pytest.raises(PayloadCorrupted, match=sha256):
        payload_verify(sha256=sha256)
    assert Payload.objects.get(pk=sha256).verified_at is None


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_verifies_an_accepted_upload_in_postgresql(coordinator, training_run):
    # A private queue, so that messages left by other runs on the shared Redis are not consumed here.
    queue = f"test-{uuid.uuid4().hex}"
    saved_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30,
                          queues=[queue]):
            sha256 = _put(coordinator, training_run)  # commits, publishes the file, then enqueues on Redis
            deadline = time.monotonic() + 30
            while Payload.objects.get(pk=sha256).verified_at is None and time.monotonic() < deadline:
                time.sleep(0.2)
    finally:
        celery_app.conf.task_default_queue = saved_queue
    payload = Payload.objects.get(pk=sha256)
    assert payload.verified_at is not None, "the worker did not process the task within 30 s"
    assert set(payload.array_norms) == {"coef", "intercept"}


@pytest.mark.django_db(transaction=True)
def test_the_eager_task_finds_the_file_published_on_commit(training_run, ingest_key, participants):
    # The file appears only after COMMIT; the task is enqueued by the same callback, after
    # the file is in place, so an in-process (eager) run verifies it at once.
    data = npz_bytes(**logistic_arrays(3))
    seen = []

    def verify(*, sha256):
        seen.append(default_storage.exists(Payload.objects.get(pk=sha256).storage_name))
        return payload_verify(sha256=sha256)

    with mock.patch("valuation.tasks.payload_verify", side_effect=verify):
        update, created = update_upload(actor=Principal(api_key=ingest_key), training_run=training_run, round=0,
                                        participant=participants[0], data=data, num_examples=5)
    assert created and seen == [True]
    payload = Payload.objects.get(pk=update.payload_id)
    assert payload.verified_at is not None and set(payload.array_norms) == {"coef", "intercept"}


def test_the_task_retries_on_database_errors_with_bounded_backoff():
    assert payload_verify_task.max_retries == 6
    assert payload_verify_task.retry_backoff_max == 300
    assert payload_verify_task.acks_late is True
