"""The coordinator's contract: training runs, global weights, updates, validation sets."""

import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from consortium.models import AuditEvent
from tests.factories import ApiKeyFactory, ConsortiumFactory, ParticipantFactory
from tests.valuation.conftest import FEATURES, LOGISTIC_SPEC, logistic_arrays, npz_bytes, validation_arrays
from valuation.models import GlobalWeights, ParticipantUpdate, Payload, TrainingRun, ValidationSet

pytestmark = pytest.mark.django_db


def upload(data: bytes, name: str = "arrays.npz") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def weights_url(run, t=0):
    return f"/api/v1/training-runs/{run.pk}/rounds/{t}/global-weights"


def update_url(run, participant="alpha", t=0):
    return f"/api/v1/training-runs/{run.pk}/rounds/{t}/updates/{participant}"


def validation_url(run):
    return f"/api/v1/training-runs/{run.pk}/validation-set"


def put_update(client, run, data, num_examples=100, participant="alpha", t=0, **headers):
    return client.put(update_url(run, participant, t), {"file": upload(data), "num_examples": num_examples},
                      format="multipart", headers=headers)


def stored_state() -> tuple:
    """Everything an upload may write; equal before and after means nothing was written."""
    return (Payload.objects.count(), GlobalWeights.objects.count(), ParticipantUpdate.objects.count(),
            ValidationSet.objects.count(), AuditEvent.objects.count())


def error_message(response) -> str:
    return response.json()["error"]["message"]


# Training runs


def test_coordinator_registers_a_training_run(coordinator, consortium):
    body = {"name": "bearing-wear", "model_family": "logistic", "task": "binary", "metric": "auc",
            "parameter_spec": LOGISTIC_SPEC}
    response = coordinator.post("/api/v1/training-runs/", body)
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.consortium == consortium
    assert response.json()["parameter_spec"] == LOGISTIC_SPEC
    assert AuditEvent.objects.filter(action="training_run.created", object_id=str(run.pk)).exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"model_family": "forest"}, "model_family"),
        ({"task": "multiclass"}, "supports task binary"),
        ({"metric": "neg_rmse"}, "does not apply to task binary"),
        ({"parameter_spec": [{"name": "coef", "shape": [4], "dtype": "float64"}]}, "needs exactly the arrays coef, intercept"),
        ({"parameter_spec": [{"name": "coef", "shape": [4, 2], "dtype": "float64"},
                             {"name": "intercept", "shape": [], "dtype": "float64"}]}, "'coef' must have shape (d,)"),
        ({"parameter_spec": [{"name": "coef", "shape": [4], "dtype": "int8"},
                             {"name": "intercept", "shape": [], "dtype": "float64"}]}, "dtype"),
        ({"parameter_spec": "coef"}, "parameter_spec"),
    ],
)
def test_invalid_training_run_is_refused_with_the_reason(coordinator, change, expected):
    body = {"name": "bad", "model_family": "logistic", "task": "binary", "metric": "auc",
            "parameter_spec": LOGISTIC_SPEC, **change}
    response = coordinator.post("/api/v1/training-runs/", body)
    assert response.status_code == 400
    assert expected in str(response.json())
    assert not TrainingRun.objects.exists()


def test_softmax_spec_dimensions_must_agree(coordinator):
    spec = [{"name": "coef", "shape": [4, 3], "dtype": "float32"}, {"name": "intercept", "shape": [2], "dtype": "float32"}]
    body = {"name": "m", "model_family": "softmax", "task": "multiclass", "metric": "accuracy", "parameter_spec": spec}
    response = coordinator.post("/api/v1/training-runs/", body)
    assert response.status_code == 400
    assert "dimension k is 2 but other arrays say 3" in error_message(response)


def test_duplicate_training_run_name_is_a_conflict(coordinator, training_run):
    body = {"name": training_run.name, "model_family": "logistic", "task": "binary", "metric": "auc",
            "parameter_spec": LOGISTIC_SPEC}
    response = coordinator.post("/api/v1/training-runs/", body)
    assert response.status_code == 409
    assert "already exists" in error_message(response)


def test_training_run_create_replays_for_the_same_idempotency_key(coordinator):
    body = {"name": "r", "model_family": "logistic", "task": "binary", "metric": "auc", "parameter_spec": LOGISTIC_SPEC}
    first = coordinator.post("/api/v1/training-runs/", body, headers={"Idempotency-Key": "create-1"})
    again = coordinator.post("/api/v1/training-runs/", body, headers={"Idempotency-Key": "create-1"})
    other = coordinator.post("/api/v1/training-runs/", {**body, "name": "s"}, headers={"Idempotency-Key": "create-1"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 409)
    assert again.json() == first.json()
    assert TrainingRun.objects.count() == 1


def test_training_run_create_takes_json_only(coordinator):
    body = {"name": "r", "model_family": "logistic", "task": "binary", "metric": "auc", "parameter_spec": "[]"}
    response = coordinator.post("/api/v1/training-runs/", body, format="multipart",
                                headers={"Idempotency-Key": "form-1"})
    assert response.status_code == 415
    assert "multipart/form-data" in error_message(response)


def test_the_same_json_with_other_whitespace_is_the_same_idempotent_request(coordinator):
    compact = ('{"name":"r","model_family":"logistic","task":"binary","metric":"auc","parameter_spec":'
               + json.dumps(LOGISTIC_SPEC) + "}")
    spaced = json.dumps(json.loads(compact), indent=2)
    first = coordinator.post("/api/v1/training-runs/", compact, content_type="application/json",
                             headers={"Idempotency-Key": "json-1"})
    again = coordinator.post("/api/v1/training-runs/", spaced, content_type="application/json",
                             headers={"Idempotency-Key": "json-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_training_run_detail_shows_who_uploaded_what(coordinator, training_run):
    coordinator.put(weights_url(training_run), {"file": upload(npz_bytes(**logistic_arrays()))}, format="multipart")
    put_update(coordinator, training_run, npz_bytes(**logistic_arrays(1)), num_examples=70, participant="beta")
    detail = coordinator.get(f"/api/v1/training-runs/{training_run.pk}/").json()
    assert detail["rounds"][0]["round"] == 0
    assert detail["rounds"][0]["global_weights"]["sha256"]
    assert [(u["participant"], u["num_examples"]) for u in detail["rounds"][0]["updates"]] == [("beta", 70)]
    assert detail["validation_set"] is None


def test_participant_user_sees_only_its_own_uploads(coordinator, training_run, api_client, member):
    put_update(coordinator, training_run, npz_bytes(**logistic_arrays(1)), participant="alpha")
    put_update(coordinator, training_run, npz_bytes(**logistic_arrays(2)), participant="beta")
    viewer = api_client.__class__()
    viewer.force_authenticate(member("participant"))  # speaks for alpha
    updates = viewer.get(f"/api/v1/training-runs/{training_run.pk}/").json()["rounds"][0]["updates"]
    assert [u["participant"] for u in updates] == ["alpha"]


# Global weights


def test_global_weights_upload_is_stored_content_addressed(coordinator, training_run,
                                                           django_capture_on_commit_callbacks):
    data = npz_bytes(**logistic_arrays())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = coordinator.put(weights_url(training_run, 3), {"file": upload(data)}, format="multipart")
    assert response.status_code == 201, response.json()
    payload = Payload.objects.get()
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest() == payload.sha256
    with default_storage.open(payload.storage_name, "rb") as stored:
        assert stored.read() == data
    assert len(callbacks) == 1  # the integrity task, enqueued after commit and run eagerly
    assert payload.verified_at is not None
    assert payload.array_norms["coef"] == pytest.approx(np.linalg.norm(logistic_arrays()["coef"]))


def test_identical_global_weights_repeat_returns_the_original(coordinator, training_run):
    data = npz_bytes(**logistic_arrays())
    first = coordinator.put(weights_url(training_run), {"file": upload(data)}, format="multipart")
    again = coordinator.put(weights_url(training_run), {"file": upload(data)}, format="multipart")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_different_global_weights_for_a_filled_round_is_a_conflict(coordinator, training_run):
    coordinator.put(weights_url(training_run), {"file": upload(npz_bytes(**logistic_arrays(0)))}, format="multipart")
    response = coordinator.put(weights_url(training_run), {"file": upload(npz_bytes(**logistic_arrays(1)))},
                               format="multipart")
    assert response.status_code == 409
    assert "already has global weights" in error_message(response)


# Participant updates: bad input


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"coef": np.zeros(FEATURES + 1), "intercept": np.float64(0)}, "array 'coef': expected shape [4], received [5]"),
        ({"coef": np.zeros(FEATURES, dtype=np.float32), "intercept": np.float64(0)},
         "array 'coef': expected dtype float64, received float32"),
        ({"coef": np.zeros(FEATURES)}, "missing array(s) intercept"),
        ({"coef": np.zeros(FEATURES), "intercept": np.float64(0), "extra": np.zeros(2)}, "unexpected array(s) extra"),
        ({"coef": np.array([0.0, np.nan, 0.0, 0.0]), "intercept": np.float64(0)}, "array 'coef' holds 1 non-finite"),
        ({"coef": np.array([0.0, np.inf, -np.inf, 0.0]), "intercept": np.float64(0)}, "holds 2 non-finite"),
        ({"coef": np.zeros(FEATURES), "intercept": np.zeros(1)}, "array 'intercept': expected shape [], received [1]"),
    ],
)
def test_update_not_matching_the_spec_is_refused_and_nothing_is_written(coordinator, training_run, arrays, expected):
    before = stored_state()
    response = put_update(coordinator, training_run, npz_bytes(**arrays))
    assert response.status_code == 400
    assert expected in error_message(response)
    assert stored_state() == before


def test_a_file_that_is_not_npz_is_refused(coordinator, training_run):
    response = put_update(coordinator, training_run, b"coef,intercept\n1,2\n")
    assert response.status_code == 400
    assert "not an .npz archive" in error_message(response)


def test_pickled_object_arrays_are_refused_without_unpickling(coordinator, training_run):
    buffer = io.BytesIO()
    np.savez(buffer, coef=np.array([object(), 1, 2, 3], dtype=object), intercept=np.float64(0))
    response = put_update(coordinator, training_run, buffer.getvalue())
    assert response.status_code == 400
    assert "object arrays are not accepted" in error_message(response)


def test_a_request_over_the_size_limit_is_refused(coordinator, training_run, settings):
    settings.UPLOAD_MAX_BYTES = 1024
    before = stored_state()
    data = npz_bytes(coef=np.zeros(FEATURES), intercept=np.float64(0)) + b"\0" * 2048
    response = put_update(coordinator, training_run, data)
    assert response.status_code == 413
    assert "limit is 1024 bytes" in error_message(response)
    assert stored_state() == before


def test_a_zip_bomb_is_refused_before_it_is_inflated(coordinator, training_run, settings):
    settings.UPLOAD_MAX_BYTES = 64 * 1024
    bomb = npz_bytes(compressed=True, coef=np.zeros(4_000_000), intercept=np.float64(0))
    assert len(bomb) < settings.UPLOAD_MAX_BYTES  # small on the wire, 32 MB inflated
    before = stored_state()
    response = put_update(coordinator, training_run, bomb)
    assert response.status_code == 413
    assert "would decompress to" in error_message(response)
    assert stored_state() == before


def test_an_archive_whose_directory_understates_sizes_cannot_inflate_past_it(coordinator, training_run):
    data = bytearray(npz_bytes(compressed=True, coef=np.zeros(FEATURES), intercept=np.float64(0)))
    # Shrink the declared size of the first member in the central directory.
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.infolist()[0]
    directory = bytes(data).find(b"PK\x01\x02")
    declared_at = directory + 24
    data[declared_at:declared_at + 4] = (info.file_size // 2).to_bytes(4, "little")
    before = stored_state()
    response = put_update(coordinator, training_run, bytes(data))
    assert response.status_code == 400
    assert stored_state() == before


@pytest.mark.parametrize(("num_examples", "expected"), [(0, "greater than or equal to 1"), (-5, "greater than"),
                                                         ("many", "valid integer"), ("", "valid integer")])
def test_num_examples_must_be_a_positive_integer(coordinator, training_run, num_examples, expected):
    response = put_update(coordinator, training_run, npz_bytes(**logistic_arrays()), num_examples=num_examples)
    assert response.status_code == 400
    assert "num_examples" in error_message(response) and expected in error_message(response)


def test_update_without_a_file_is_refused(coordinator, training_run):
    response = coordinator.put(update_url(training_run), {"num_examples": 3}, format="multipart")
    assert response.status_code == 400
    assert "file" in error_message(response)


def test_update_for_a_participant_of_another_consortium_is_404(coordinator, training_run):
    ParticipantFactory(consortium=ConsortiumFactory(), slug="outsider")
    before = stored_state()
    response = put_update(coordinator, training_run, npz_bytes(**logistic_arrays()), participant="outsider")
    assert response.status_code == 404
    assert "does not belong to consortium acme" in error_message(response)
    assert stored_state() == before


def test_round_number_has_a_ceiling(coordinator, training_run):
    response = put_update(coordinator, training_run, npz_bytes(**logistic_arrays()), t=10**9)
    assert response.status_code == 400
    assert "round must be between 0 and" in error_message(response)


# Participant updates: idempotency


def test_update_is_accepted_once_with_an_audit_event(coordinator, training_run):
    response = put_update(coordinator, training_run, npz_bytes(**logistic_arrays()), num_examples=250, t=2)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["participant"], body["round"], body["num_examples"]) == ("alpha", 2, 250)
    event = AuditEvent.objects.get(action="update.accepted")
    assert event.actor_api_key is not None and event.data["sha256"] == body["sha256"]


def test_same_content_again_returns_the_original_response(coordinator, training_run):
    data = npz_bytes(**logistic_arrays())
    first = put_update(coordinator, training_run, data)
    again = put_update(coordinator, training_run, data)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ParticipantUpdate.objects.count() == 1


def test_same_idempotency_key_returns_the_original_response(coordinator, training_run):
    data = npz_bytes(**logistic_arrays())
    first = put_update(coordinator, training_run, data, **{"Idempotency-Key": "u-1"})
    again = put_update(coordinator, training_run, data, **{"Idempotency-Key": "u-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_same_idempotency_key_with_a_different_body_is_a_conflict(coordinator, training_run):
    put_update(coordinator, training_run, npz_bytes(**logistic_arrays(0)), **{"Idempotency-Key": "u-1"})
    response = put_update(coordinator, training_run, npz_bytes(**logistic_arrays(1)), **{"Idempotency-Key": "u-1"})
    assert response.status_code == 409
    assert "already used for a different request" in error_message(response)


@pytest.mark.parametrize("differs", ["file", "num_examples"])
def test_a_different_body_for_a_filled_slot_is_a_conflict(coordinator, training_run, differs):
    put_update(coordinator, training_run, npz_bytes(**logistic_arrays(0)), num_examples=10)
    data = npz_bytes(**logistic_arrays(1 if differs == "file" else 0))
    response = put_update(coordinator, training_run, data, num_examples=10 if differs == "file" else 11)
    assert response.status_code == 409
    assert "already has an update from participant alpha" in error_message(response)
    assert differs in error_message(response)
    assert ParticipantUpdate.objects.get().num_examples == 10


def test_same_bytes_for_two_participants_are_stored_once(coordinator, training_run):
    data = npz_bytes(**logistic_arrays())
    put_update(coordinator, training_run, data, participant="alpha")
    put_update(coordinator, training_run, data, participant="beta")
    assert ParticipantUpdate.objects.count() == 2
    assert Payload.objects.count() == 1


# Validation sets


@pytest.fixture
def governance_client(api_client, member):
    api_client.force_authenticate(member("governance"))
    return api_client


def test_governance_uploads_versioned_validation_sets(governance_client, training_run):
    first = governance_client.put(validation_url(training_run), {"file": upload(npz_bytes(**validation_arrays()))},
                                  format="multipart")
    second = governance_client.put(validation_url(training_run),
                                   {"file": upload(npz_bytes(**validation_arrays(seed=1)))}, format="multipart")
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json()["version"], second.json()["version"]) == (1, 2)
    assert list(ValidationSet.objects.filter(is_active=True).values_list("version", flat=True)) == [2]
    assert second.json()["rows"] == 50 and second.json()["features"] == FEATURES


def test_identical_validation_set_repeat_keeps_the_active_version(governance_client, training_run):
    data = npz_bytes(**validation_arrays())
    governance_client.put(validation_url(training_run), {"file": upload(data)}, format="multipart")
    again = governance_client.put(validation_url(training_run), {"file": upload(data)}, format="multipart")
    assert again.status_code == 200
    assert again.json()["version"] == 1
    assert ValidationSet.objects.count() == 1


def test_validation_key_can_upload_validation_sets(api_client, consortium, training_run):
    key = ApiKeyFactory(consortium=consortium, scopes=["validation"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key.raw_key}")
    response = api_client.put(validation_url(training_run), {"file": upload(npz_bytes(**validation_arrays()))},
                              format="multipart")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"X": np.zeros((10, FEATURES + 2)), "y": np.zeros(10)}, "expected shape [m, 4] (the spec has 4 features), received [10, 6]"),
        ({"X": np.zeros((10, FEATURES)), "y": np.zeros(9)}, "array 'y': expected shape [10]"),
        ({"X": np.zeros((10, FEATURES)), "y": np.full(10, 2)}, "binary labels must be 0 or 1"),
        ({"X": np.zeros((10, FEATURES))}, "exactly the arrays X and y"),
        ({"X": np.zeros((10, FEATURES), dtype=np.int64), "y": np.zeros(10)}, "expected a float dtype"),
        ({"X": np.full((10, FEATURES), np.nan), "y": np.zeros(10)}, "non-finite"),
    ],
)
def test_bad_validation_set_is_refused_and_nothing_is_written(governance_client, training_run, arrays, expected):
    before = stored_state()
    response = governance_client.put(validation_url(training_run), {"file": upload(npz_bytes(**arrays))},
                                     format="multipart")
    assert response.status_code == 400
    assert expected in error_message(response)
    assert stored_state() == before
