"""A consortium whose training run was valued (exact, in-process), and its staff."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from consortium.access import Principal
from tests.factories import ApiKeyFactory, MembershipFactory, ParticipantFactory
from tests.valuation.conftest import LOGISTIC_SPEC
from tests.valuation.runs.conftest import upload_rounds
from valuation.services import training_run_create, valuation_run_start


def valued_run(consortium, participants, *, seed: int = 0, rounds: int = 2):
    """An exact valuation run over ``participants``' uploads; in embedded mode it has
    succeeded once the callers' on-commit callbacks ran."""
    actor = Principal(api_key=ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation", "valuation"]))
    training_run = training_run_create(actor=actor, consortium=consortium, name=f"run-{seed}", model_family="logistic",
                                       task="binary", metric="neg_log_loss", parameter_spec=LOGISTIC_SPEC)
    upload_rounds(actor=actor, training_run=training_run, participants=participants, rounds=rounds, seed=seed)
    return valuation_run_start(actor=actor, training_run=training_run, method="exact", seed=seed)


@pytest.fixture
def settled_participants(consortium, participants):
    """Five participants: the consortium's three and two more."""
    return list(participants) + [ParticipantFactory(consortium=consortium, slug=f"delta-{i}") for i in range(2)]


@pytest.fixture
def vrun(db, consortium, settled_participants, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = valued_run(consortium, settled_participants)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    return run


@pytest.fixture
def staff(consortium):
    """Principals and API clients of three finance users, governance and an auditor."""

    class Staff:
        def __init__(self):
            self.users = {name: MembershipFactory(consortium=consortium, role=role).user
                          for name, role in [("drafter", "finance"), ("first", "finance"), ("second", "finance"),
                                             ("governance", "governance"), ("auditor", "auditor")]}

        def principal(self, name: str) -> Principal:
            return Principal(user=self.users[name])

        def client(self, name: str) -> APIClient:
            client = APIClient()
            client.force_authenticate(self.users[name])
            return client

    return Staff()
