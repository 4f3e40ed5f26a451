"""A training run with uploaded rounds and a validation set, ready to be valued."""

from __future__ import annotations

import numpy as np
import pytest

from consortium.access import Principal
from tests.factories import ApiKeyFactory, MembershipFactory, ParticipantFactory
from tests.valuation.conftest import FEATURES, npz_bytes
from valuation.services import global_weights_upload, update_upload, validation_set_upload


def upload_rounds(*, actor, training_run, participants, rounds: int, seed: int = 0, rows: int = 60) -> None:
    """``rounds`` rounds of random logistic updates from every participant, and a validation set."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, FEATURES))
    y = (X @ rng.normal(size=FEATURES) + rng.normal(scale=0.5, size=rows) > 0).astype(np.float64)
    validation_set_upload(actor=actor, training_run=training_run, data=npz_bytes(X=X, y=y))
    coef, intercept = np.zeros(FEATURES), np.float64(0.0)
    for t in range(rounds):
        global_weights_upload(actor=actor, training_run=training_run, round=t,
                              data=npz_bytes(coef=coef, intercept=intercept))
        for participant in participants:
            update_upload(actor=actor, training_run=training_run, round=t, participant=participant,
                          data=npz_bytes(coef=rng.normal(scale=0.3, size=FEATURES),
                                         intercept=np.float64(rng.normal(scale=0.1))),
                          num_examples=int(rng.integers(20, 200)))
        coef = coef + rng.normal(scale=0.2, size=FEATURES)


@pytest.fixture
def valued_participants(consortium, participants):
    """Six participants: the consortium's three and three more."""
    extra = [ParticipantFactory(consortium=consortium, slug=f"plant-{i}") for i in range(3)]
    return list(participants) + extra


@pytest.fixture
def uploaded_run(consortium, training_run, ingest_key, valued_participants):
    upload_rounds(actor=Principal(api_key=ingest_key), training_run=training_run, participants=valued_participants,
                  rounds=3)
    return training_run


@pytest.fixture
def valuation_key(consortium):
    return ApiKeyFactory(consortium=consortium, scopes=["valuation"])


@pytest.fixture
def valuer(api_client, valuation_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {valuation_key.raw_key}")
    return api_client


@pytest.fixture
def finance_user(consortium):
    return MembershipFactory(consortium=consortium, role="finance").user
