"""Nothing half-written (issue #9): a payload file exists only if its row committed.

Uploads stage their bytes before the transaction, write the row in it and publish the file
after COMMIT (``valuation.services.payloads``). These tests commit for real
(``transaction=True``) and look at ``MEDIA_ROOT`` itself, which ``tests/conftest.py`` gives
each test. ``payload_check`` is tested on planted damage: an orphan, a row without file, a
corrupt file, the staged file of a crash between COMMIT and publishing.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import AuditEvent
from core.errors import Conflict, InvalidInput, ServiceError
from tests.valuation.conftest import FEATURES, LOGISTIC_SPEC, logistic_arrays, npz_bytes, validation_arrays
from valuation import services
from valuation.models import GlobalWeights, ParticipantUpdate, Payload, TrainingRun, ValidationSet
from valuation.serializers import UpdateUploadInput
from valuation.services import payloads, uploads
from valuation.services.payload_storage import payload_storage_check
from valuation.services.payloads import payload_name
from valuation.services.uploads import MAX_NUM_EXAMPLES
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


@pytest.fixture
def actor(ingest_key):
    return Principal(api_key=ingest_key)


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


# payload_check


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


@commits
def test_payload_check_passes_on_consistent_storage(training_run, actor, participants):
    for i, participant in enumerate(participants):
        upload("update", training_run, actor, valid_bytes("update", i), participant=participant)
    upload("validation", training_run, actor, valid_bytes("validation", 0))
    code, output = check("--chunk-size", "2")
    assert code == 0, output
    assert "payload storage consistent: 4 row(s), 4 file(s)" in output
    plant(payload_name("d" * 64), b"orphan", age=2 * HOUR)
    code, output = check("--repair")
    assert code == 0 and "payload storage consistent: 4 row(s), 4 file(s)" in output, output


@commits
def test_a_crash_after_commit_is_logged_reported_and_repaired(training_run, actor, caplog):
    data = valid_bytes("update", 20)
    with caplog.at_level(logging.ERROR, logger="valuation.services.payloads"):
        crash_after_commit("update", training_run, actor, data)
    assert "payload_check --repair" in caplog.text
    name = payload_name(hashlib.sha256(data).hexdigest())
    assert published_files() == [] and len(staged_files()) == 1
    code, output = check()
    assert code == 1 and f"row without file: {name}" in output and "--repair publishes them" in output
    code, output = check("--repair")
    assert code == 0, output
    assert f"published {name}" in output
    assert_consistent()
    assert services.payload_verify(sha256=hashlib.sha256(data).hexdigest()).verified_at is not None


@commits
def test_payload_check_reports_every_kind_of_damage_and_repairs_only_what_it_should(training_run, actor,
                                                                                    participants):
    good = valid_bytes("update", 21)
    upload("update", training_run, actor, good, participant=participants[0])
    corrupt = valid_bytes("update", 22)
    upload("update", training_run, actor, corrupt, participant=participants[1])
    corrupt_name = payload_name(hashlib.sha256(corrupt).hexdigest())
    damaged = corrupt[:-1] + bytes([corrupt[-1] ^ 0xFF])
    plant(corrupt_name, damaged)
    crashed = valid_bytes("update", 23)
    crash_after_commit("update", training_run, actor, crashed, participant=participants[2])
    crashed_name = payload_name(hashlib.sha256(crashed).hexdigest())
    lost = "f" * 64  # a row whose file and bytes are gone
    Payload.objects.create(sha256=lost, size=10, storage_name=payload_name(lost))
    old_orphan = plant(payload_name("a" * 64), b"old orphan", age=2 * HOUR)
    young_orphan = plant(payload_name("b" * 64), b"young orphan")
    stray = plant("payloads/notes.txt", b"not a payload", age=2 * HOUR)
    stale = staging(b"an upload that died before its transaction", age=2 * HOUR)
    in_flight = staging(b"an upload still in its transaction", age=60)
    duplicate = staging(good, age=2 * HOUR)  # a second copy of stored bytes, left by a crash

    code, output = check()
    assert code == 1
    for expected in [f"orphan file {old_orphan}", f"orphan file {young_orphan}", f"orphan file {stray}",
                     f"row without file: {payload_name(lost)} (no staged copy",
                     f"row without file: {crashed_name} (its bytes wait at",
                     f"corrupt file {corrupt_name}: its bytes hash to {hashlib.sha256(damaged).hexdigest()}",
                     f"stale staging file {stale}", f"stale staging file {duplicate}",
                     "1 staged file(s) younger than 3600 s: uploads in flight"]:
        assert expected in output, (expected, output)
    assert in_flight not in output
    assert (Path(django_settings.MEDIA_ROOT) / old_orphan).exists()  # a check without --repair changes nothing

    code, output = check("--repair")
    assert code == 1  # what needs an operator is still there
    files = media_files()
    assert crashed_name in files and old_orphan not in files and stray not in files
    assert stale not in files and duplicate not in files
    assert young_orphan in files and in_flight in files  # younger than the grace period
    assert corrupt_name in files and (Path(django_settings.MEDIA_ROOT) / corrupt_name).read_bytes() == damaged
    assert f"published {crashed_name} from its staged copy" in output
    remaining = [line for line in output.splitlines() if not line.startswith(("published", "deleted"))]
    assert any(f"orphan file {young_orphan}" in line for line in remaining)
    assert any(f"corrupt file {corrupt_name}" in line for line in remaining)
    assert any(payload_name(lost) in line for line in remaining)
    assert not any(crashed_name in line for line in remaining)

    # With a grace of 0 the young orphan goes too; the problems only a person can solve remain.
    code, output = check("--repair", "--grace", "0")
    assert code == 1 and young_orphan not in media_files() and in_flight not in media_files()
    assert corrupt_name in media_files()


@commits
def test_a_staged_copy_that_does_not_hash_to_the_row_is_not_published(training_run, actor):
    data = valid_bytes("update", 24)
    crash_after_commit("update", training_run, actor, data)
    [staged] = staged_files()
    plant(staged, b"torn write")
    code, output = check("--repair", "--grace", "0")
    assert code == 1 and "no staged copy" in output
    assert published_files() == [] and staged_files() == []  # the torn copy is just stale


@commits
def test_payload_check_refuses_a_bad_chunk_size(db):
    code, output = check("--chunk-size", "0")
    assert code == 1 and "chunk size" in output


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
