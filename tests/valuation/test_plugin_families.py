"""A model family registered with ``register_model_family`` is ingested and valued without
touching the service: the vocabulary comes from the engine's registry."""

import io

import numpy as np
import pytest
from django.core.files.storage import default_storage

from tests.valuation.conftest import FEATURES, npz_bytes
from tests.valuation.test_api import put_update, upload, validation_url, weights_url
from tests.valuation.test_spec import PLUG_INS
from valuation.engine import FLRoundGame, estimate, register_model_family, unregister_model_family
from valuation.models import ParticipantUpdate, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)
FAMILY = "test-nointercept"


@pytest.fixture
def plug_in():
    register_model_family(FAMILY, PLUG_INS[FAMILY], replace=True)
    yield FAMILY
    unregister_model_family(FAMILY)


def _arrays(payload) -> dict:
    with default_storage.open(payload.storage_name, "rb") as stored:
        with np.load(io.BytesIO(stored.read()), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}


def test_a_plug_in_family_is_ingested_through_the_api_and_valued_by_the_engine(coordinator, participants, plug_in,
                                                                               consortium, member):
    body = {"name": "no-intercept", "model_family": plug_in, "task": "binary", "metric": "neg_log_loss",
            "parameter_spec": [{"name": "coef", "shape": [FEATURES], "dtype": "float64"}]}
    created = coordinator.post("/api/v1/training-runs/", body, format="json")
    assert created.status_code == 201, created.content
    run = TrainingRun.objects.get(pk=created.json()["id"])
    rng = np.random.default_rng(5)
    assert coordinator.put(weights_url(run), {"file": upload(npz_bytes(coef=np.zeros(FEATURES)))},
                           format="multipart").status_code == 201
    for participant in participants:
        response = put_update(coordinator, run, npz_bytes(coef=rng.normal(size=FEATURES)), participant=participant.slug,
                              num_examples=int(rng.integers(50, 500)))
        assert response.status_code == 201, response.content
    # An update that does not fit the plug-in's layout is refused like any other.
    refused = put_update(coordinator, run, npz_bytes(coef=np.zeros(FEATURES), intercept=np.float64(0)), t=1)
    assert refused.status_code == 400 and "unexpected array(s) intercept" in refused.json()["error"]["message"]
    coordinator.credentials(HTTP_AUTHORIZATION="")
    coordinator.force_authenticate(member("governance"))
    X = rng.normal(size=(80, FEATURES))
    assert coordinator.put(validation_url(run), {"file": upload(npz_bytes(X=X, y=(X[:, 0] > 0).astype(float)))},
                           format="multipart").status_code == 201

    updates = list(ParticipantUpdate.objects.filter(training_run=run).order_by("participant__slug"))
    game = FLRoundGame(family=run.model_family, task=run.task, metric=run.metric,
                       global_weights=_arrays(run.global_weights.get(round=0).payload),
                       updates=[_arrays(u.payload) for u in updates], num_examples=[u.num_examples for u in updates],
                       X=X, y=(X[:, 0] > 0).astype(float))
    result = estimate(game, method="exact", seed=0)
    assert result.values.shape == (len(participants),)
    assert result.values.sum() == pytest.approx(result.utility_grand - result.utility_empty, abs=1e-9)


def test_a_family_name_longer_than_the_column_is_refused_with_a_clear_error(coordinator, participants):
    long_name = "test-" + "x" * 70
    register_model_family(long_name, PLUG_INS[FAMILY], replace=True)
    try:
        body = {"name": "too-long", "model_family": long_name, "task": "binary", "metric": "neg_log_loss",
                "parameter_spec": [{"name": "coef", "shape": [FEATURES], "dtype": "float64"}]}
        response = coordinator.post("/api/v1/training-runs/", body, format="json")
    finally:
        unregister_model_family(long_name)
    assert response.status_code == 400
    assert "longer than 64 characters" in response.json()["error"]["message"]
    assert not TrainingRun.objects.filter(name="too-long").exists()
