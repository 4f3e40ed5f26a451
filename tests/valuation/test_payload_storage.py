"""Nothing half-written (issue #9): a payload file exists only if its row committed.

Uploads stage their bytes before the transaction, write the row in it and publish the file
after COMMIT (``valuation.services.payloads``). These tests commit for real
(``transaction=True``) and look at ``MEDIA_ROOT`` itself, which ``tests/conftest.py`` gives
each test.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from unittest import mock

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.errors import Conflict, InvalidInput, ServiceError
from tests.valuation.conftest import FEATURES, npz_bytes
from tests.valuation.payloads_world import (
    KINDS,
    ROW_MODEL,
    Injected,
    InjectedDatabaseError,
    _raise,
    assert_consistent,
    attempt,
    check,
    commits,
    crash_after_commit,
    injected,
    new_run,
    published_files,
    staged_files,
    state,
    upload,
    valid_bytes,
)
from valuation.models import ParticipantUpdate, Payload
from valuation.serializers import UpdateUploadInput
from valuation.services import payloads, uploads
from valuation.services.payload_storage import payload_storage_check
from valuation.services.payloads import payload_name
from valuation.services.uploads import MAX_NUM_EXAMPLES

# Accepted uploads


@commits
@pytest.mark.parametrize("kind", KINDS)
def test_an_accepted_upload_is_published_after_commit_and_only_then(kind, training_run, actor):
    data = valid_bytes(kind, 1)
    sha256 = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        upload(kind, training_run, actor, data)
        assert published_files() == []  # not committed yet: no file under its final name
        assert len(staged_files()) == 1
    assert published_files() == [payload_name(sha256)]
    assert Payload.objects.get().storage_name == payload_name(sha256)
    assert_consistent()
    assert Payload.objects.get().verified_at is not None  # the eager task found the file


@commits
def test_the_same_bytes_in_several_slots_are_one_file_and_a_repeat_stages_nothing(training_run, actor,
                                                                                  participants):
    data = valid_bytes("update", 2)
    with mock.patch("valuation.services.payloads._write_durably",
                    wraps=payloads._write_durably) as writes:
        for participant in participants:
            assert upload("update", training_run, actor, data, participant=participant)[1] is True
        assert upload("weights", training_run, actor, data, round=0)[1] is True
        assert upload("update", training_run, actor, data, participant=participants[0])[1] is False
    assert writes.call_count == 1  # once stored, the same bytes are not even staged again
    assert published_files() == [payload_name(hashlib.sha256(data).hexdigest())]
    assert_consistent()


@commits
@pytest.mark.parametrize("kind", KINDS)
def test_a_repeat_restores_a_file_that_storage_lost(kind, training_run, actor):
    data = valid_bytes(kind, 3)
    upload(kind, training_run, actor, data)
    name = Payload.objects.get().storage_name
    default_storage.delete(name)
    assert upload(kind, training_run, actor, data)[1] is False
    assert published_files() == [name]
    assert_consistent()


# Refused uploads change nothing


FAILURES = ["payload_row", "upload_row", "audit", "after_write", "hand_over_then_fail", "outer_rollback",
            "set_rollback"]


@commits
@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_upload_leaves_no_row_and_no_file(kind, failure, training_run, actor):
    upload("weights", training_run, actor, valid_bytes("weights", 0), round=9)  # what was there stays there
    before = state()
    with injected(failure, kind):
        try:
            attempt(failure, lambda: upload(kind, training_run, actor, valid_bytes(kind, 4)))
        except (Injected, InjectedDatabaseError):
            pass
    assert state() == before
    assert_consistent()


@commits
@pytest.mark.parametrize("failure", [f for f in FAILURES if f != "payload_row"])  # the row exists already
def test_a_failed_upload_of_stored_bytes_keeps_their_file(failure, training_run, actor, participants):
    data = valid_bytes("update", 5)
    upload("update", training_run, actor, data, participant=participants[0])
    before = state()
    with injected(failure, "update"):
        try:
            attempt(failure, lambda: upload("update", training_run, actor, data, participant=participants[1]))
        except (Injected, InjectedDatabaseError):
            pass
    assert state() == before
    assert_consistent()


@commits
@pytest.mark.parametrize("kind", ["update", "weights"])
@pytest.mark.parametrize("same_bytes", [True, False])
def test_losing_the_race_for_a_slot_leaves_only_the_winners_file(kind, same_bytes, training_run, actor):
    ours, theirs = valid_bytes(kind, 6), valid_bytes(kind, 6 if same_bytes else 7)
    with injected("race", kind, competitor=lambda: upload(kind, training_run, actor, theirs)):
        if same_bytes:
            assert upload(kind, training_run, actor, ours)[1] is False  # answered as a repeat
        else:
            with pytest.raises(Conflict):
                upload(kind, training_run, actor, ours)
    assert published_files() == [payload_name(hashlib.sha256(theirs).hexdigest())]
    assert ROW_MODEL[kind].objects.count() == 1
    assert_consistent()


@commits
@pytest.mark.parametrize("kind", ["update", "weights"])
def test_a_value_the_database_cannot_hold_leaves_nothing(kind, training_run, actor):
    before = state()
    with pytest.raises(Exception):  # noqa: B017 - OverflowError on SQLite, DataError on PostgreSQL
        upload(kind, training_run, actor, valid_bytes(kind, 8), round=2**63)
    assert state() == before
    assert_consistent()


@commits
def test_a_failure_in_the_idempotency_record_after_the_service_leaves_nothing(coordinator, training_run):
    data = valid_bytes("update", 9)
    before = state()
    with mock.patch("core.idempotency.idempotency_store", _raise(IntegrityError("duplicate key"))):
        with pytest.raises(IntegrityError):
            coordinator.put(f"/api/v1/training-runs/{training_run.pk}/rounds/0/updates/alpha",
                            {"file": SimpleUploadedFile("u.npz", data), "num_examples": 5}, format="multipart",
                            headers={"Idempotency-Key": "k-1"})
    assert state() == before
    assert_consistent()


# num_examples has a documented bound


@commits
@pytest.mark.parametrize("num_examples", [0, -1, MAX_NUM_EXAMPLES + 1, 2**63, 2**64, True, 2.0])
def test_num_examples_out_of_range_is_refused_before_anything_is_written(num_examples, training_run, actor):
    before = state()
    with pytest.raises(InvalidInput) as refused:
        upload("update", training_run, actor, valid_bytes("update", 10), num_examples=num_examples)
    assert refused.value.field == "num_examples"
    assert state() == before


@commits
def test_the_largest_num_examples_is_stored(training_run, actor):
    update, created = upload("update", training_run, actor, valid_bytes("update", 11), num_examples=MAX_NUM_EXAMPLES)
    assert created and ParticipantUpdate.objects.get().num_examples == MAX_NUM_EXAMPLES


@commits
def test_the_api_refuses_num_examples_above_the_bound_with_a_400(coordinator, training_run):
    before = state()
    response = coordinator.put(f"/api/v1/training-runs/{training_run.pk}/rounds/0/updates/alpha",
                               {"file": SimpleUploadedFile("u.npz", valid_bytes("update", 12)),
                                "num_examples": str(2**63)}, format="multipart")
    assert response.status_code == 400, response.content
    assert "num_examples" in response.json()["error"]["message"]
    assert state() == before


def test_the_bound_is_in_the_form_and_its_schema(client, db):
    field = UpdateUploadInput().fields["num_examples"]
    assert (field.min_value, field.max_value) == (1, MAX_NUM_EXAMPLES) and "10^12" in field.help_text
    import yaml

    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    form = schema["components"]["schemas"]["UpdateUploadInputRequest"]["properties"]["num_examples"]
    assert form["maximum"] == MAX_NUM_EXAMPLES and "10^12" in form["description"]


# Concurrency (PostgreSQL: SQLite serialises writers and has no row-level waits)


def _in_threads(*calls):
    barrier, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call(barrier)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.postgres
@commits
def test_concurrent_uploads_of_the_same_bytes_to_different_slots(training_run, actor, participants):
    data = valid_bytes("update", 13)
    original = uploads._check_parameter_arrays

    def both_checked(training_run, data):  # both are past their checks before either writes
        original(training_run, data)
        barrier.wait(timeout=30)

    barrier = threading.Barrier(2)
    with mock.patch.object(uploads, "_check_parameter_arrays", both_checked):
        results = _in_threads(*[
            (lambda _b, p=p: upload("update", training_run, actor, data, participant=p)) for p in participants[:2]
        ])
    assert [created for _update, created in results] == [True, True], results
    assert published_files() == [payload_name(hashlib.sha256(data).hexdigest())]
    assert_consistent()


@pytest.mark.postgres
@commits
def test_concurrent_uploads_of_different_bytes_to_one_slot(training_run, actor):
    blobs = [valid_bytes("update", 14), valid_bytes("update", 15)]
    original = uploads._check_parameter_arrays
    barrier = threading.Barrier(2)

    def both_checked(training_run, data):
        original(training_run, data)
        barrier.wait(timeout=30)

    with mock.patch.object(uploads, "_check_parameter_arrays", both_checked):
        results = _in_threads(*[(lambda _b, d=d: upload("update", training_run, actor, d)) for d in blobs])
    winners = [r for r in results if isinstance(r, tuple)]
    assert len(winners) == 1 and sum(isinstance(r, Conflict) for r in results) == 1, results
    assert published_files() == [payload_name(winners[0][0].payload_id)]
    assert_consistent()


# The property: after any sequence of uploads, storage and table agree


INVALID = {
    "wrong-shape": npz_bytes(coef=np.zeros(FEATURES + 1), intercept=np.float64(0)),
    "nan": npz_bytes(coef=np.full(FEATURES, np.nan), intercept=np.float64(0)),
    "junk": b"not an npz archive",
}
# Each example gets bytes of its own (rows stay from one example to the next, and stored
# bytes are not staged again); within an example valid bytes i are the same for global
# weights and updates, so they repeat across slots and kinds.
SALTS = itertools.count(1000, 3)
STEP = st.fixed_dictionaries({
    "kind": st.sampled_from(KINDS),
    "round": st.integers(0, 1),
    "participant": st.integers(0, 2),
    # Mostly valid bytes, mostly in range: a refusal before staging is the least interesting case.
    "data": st.sampled_from([0, 1, 2] * 3 + sorted(INVALID)),
    "num_examples": st.sampled_from([1, 7, 1000, MAX_NUM_EXAMPLES] * 2
                                    + [0, -1, MAX_NUM_EXAMPLES + 1, 2**63, 2**64]),
    "failure": st.sampled_from(["none"] * 4 + FAILURES + ["race"]),
})


def step_bytes(kind: str, data, salt: int) -> bytes:
    return valid_bytes(kind, salt + data) if isinstance(data, int) else INVALID[data]


@commits
@hypothesis_settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")), derandomize=True, deadline=None,
                     database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                           HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=12))
def test_any_sequence_of_uploads_keeps_storage_and_table_in_step(steps, consortium, participants, actor):
    run, salt = new_run(consortium, actor), next(SALTS)
    for step in steps:
        kind, data = step["kind"], step_bytes(step["kind"], step["data"], salt)
        participant = participants[step["participant"]]

        def call(data=data, kind=kind, participant=participant, step=step):
            return upload(kind, run, actor, data, round=step["round"], participant=participant,
                          num_examples=step["num_examples"])

        competitor = (lambda kind=kind, participant=participant, step=step:  # other bytes, same slot
                      upload(kind, run, actor, step_bytes(kind, 2 if step["data"] != 2 else 1, salt),
                             round=step["round"], participant=participant, num_examples=1))
        rows_before = Payload.objects.count()
        try:
            with injected(step["failure"], kind, competitor=competitor):
                result = attempt(step["failure"], call)
        except (ServiceError, Injected, InjectedDatabaseError):
            result = None
        assert_consistent()
        if result is not None and result[1] and step["failure"] == "none":
            sha256 = hashlib.sha256(data).hexdigest()
            assert payload_name(sha256) in published_files()
            assert Payload.objects.count() - rows_before in (0, 1)
    assert payload_storage_check().ok


# Another storage class: the same rule through the storage API alone


@pytest.fixture
def memory_storage(settings):
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    return default_storage


def _memory_files(storage, directory="payloads") -> list[str]:
    try:
        directories, files = storage.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted([f"{directory}/{f}" for f in files] + [n for d in directories
                                                          for n in _memory_files(storage, f"{directory}/{d}")])


@commits
def test_with_another_storage_class_uploads_publish_and_failures_leave_nothing(memory_storage, training_run, actor,
                                                                               participants):
    data = valid_bytes("update", 30)
    name = payload_name(hashlib.sha256(data).hexdigest())
    with transaction.atomic():
        upload("update", training_run, actor, data, participant=participants[0])
        assert [n for n in _memory_files(memory_storage) if not n.startswith("payloads/staging/")] == []
    upload("update", training_run, actor, data, participant=participants[1])  # same bytes, stored once
    assert _memory_files(memory_storage) == [name]
    for failure in ["audit", "outer_rollback", "set_rollback", "hand_over_then_fail"]:
        with injected(failure, "update"):
            try:
                attempt(failure, lambda: upload("update", training_run, actor, valid_bytes("update", 31),
                                                participant=participants[2]))
            except Injected:
                pass
    assert _memory_files(memory_storage) == [name] and ParticipantUpdate.objects.count() == 2
    crashed = valid_bytes("update", 32)
    crash_after_commit("update", training_run, actor, crashed, participant=participants[2])
    orphan = memory_storage.save(payload_name("c" * 64), ContentFile(b"orphan"))
    code, output = check("--repair", "--grace", "0")  # the storage's clock says the orphan is new
    assert code == 0, output
    assert _memory_files(memory_storage) == sorted([name, payload_name(hashlib.sha256(crashed).hexdigest())])
    assert orphan not in _memory_files(memory_storage)
    assert payload_storage_check().ok
