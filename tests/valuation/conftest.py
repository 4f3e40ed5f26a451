"""Fixtures for ingestion tests: a coordinator key, a logistic training run, npz builders."""

import io

import numpy as np
import pytest

from consortium.access import Principal
from tests.factories import ApiKeyFactory
from valuation.services import training_run_create

FEATURES = 4
LOGISTIC_SPEC = [
    {"name": "coef", "shape": [FEATURES], "dtype": "float64"},
    {"name": "intercept", "shape": [], "dtype": "float64"},
]


def npz_bytes(compressed: bool = False, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def logistic_arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"coef": rng.normal(size=FEATURES), "intercept": np.float64(rng.normal())}


def validation_arrays(rows: int = 50, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(size=(rows, FEATURES)), "y": rng.integers(0, 2, size=rows)}


@pytest.fixture
def ingest_key(consortium):
    return ApiKeyFactory(consortium=consortium, scopes=["ingest"])


@pytest.fixture
def actor(ingest_key):
    """The coordinator's key as the services' actor."""
    return Principal(api_key=ingest_key)


@pytest.fixture
def coordinator(api_client, ingest_key):
    api_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ingest_key.raw_key}")
    return api_client


@pytest.fixture
def training_run(consortium, ingest_key, participants):
    return training_run_create(
        actor=Principal(api_key=ingest_key), consortium=consortium, name="pump-failure-2026",
        model_family="logistic", task="binary", metric="neg_log_loss", parameter_spec=LOGISTIC_SPEC,
    )
