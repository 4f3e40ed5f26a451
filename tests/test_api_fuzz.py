"""Fuzzing the whole API from its OpenAPI schema: no input gives a 5xx, every answer under
/api/v1/ is JSON (a CSV download is CSV), and every refusal carries the documented error body.

schemathesis turns each operation of the schema into a hypothesis strategy, in two modes:
inputs the schema allows (positive) and inputs it forbids (negative). Each operation is tried
by a caller that may use it (an all-scope API key and a finance user; governance for the
validation set), once with generated path parameters (mostly objects that do not exist) and
once with the world's real objects, so that bodies reach the services. The requests go through
Django's test client in the test's transaction. A fixed seed (``derandomize``) keeps CI
repeatable; ``FUZZ_EXAMPLES`` sets the examples per combination (default 8; the closing note
of issue #9 records a run with 300).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.core import NotSet

from consortium.access import Principal
from consortium.audit import system_principal
from incentives.services import dispute_file, dispute_review, policy_change
from ledger.services import checkpoint_create, entry_append
from tests.factories import ApiKeyFactory, MembershipFactory, ParticipantFactory
from tests.incentives.worlds import pools_in_every_state
from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes, validation_arrays
from valuation.services import (
    global_weights_upload,
    training_run_create,
    update_upload,
    validation_set_upload,
    valuation_run_start,
)

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
SCHEMA = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}
# With FUZZ_REPORT=path, each test adds its (operation, status) tallies to that JSON-lines file.
REPORT = os.environ.get("FUZZ_REPORT")


@pytest.fixture
def world(consortium, django_capture_on_commit_callbacks):
    alpha = ParticipantFactory(consortium=consortium, slug="alpha")
    ParticipantFactory(consortium=consortium, slug="beta")
    key = ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation", "valuation", "read"])
    actor = Principal(api_key=key)
    run = training_run_create(actor=actor, consortium=consortium, name="fuzzed", model_family="logistic",
                              task="binary", metric="auc", parameter_spec=LOGISTIC_SPEC)
    with django_capture_on_commit_callbacks(execute=True):  # publish the uploads' files, as a commit would
        global_weights_upload(actor=actor, training_run=run, round=0, data=npz_bytes(**logistic_arrays(1)))
        update_upload(actor=actor, training_run=run, round=0, participant=alpha,
                      data=npz_bytes(**logistic_arrays(2)), num_examples=50)
        validation_set_upload(actor=actor, training_run=run, data=npz_bytes(**validation_arrays()))
    with django_capture_on_commit_callbacks(execute=True):  # and value them, in-process
        valuation = valuation_run_start(actor=actor, training_run=run, method="exact", seed=1)
    valuation.refresh_from_db()
    assert valuation.status == "succeeded", valuation.error_message
    entry_append(consortium=consortium, kind="transaction", body={"memo": "receipt"}, actor="system:test",
                 reference_type="revenue_pool", reference_id="pool-1",
                 postings=[("consortium_income", Decimal("-10"), "EUR"),
                           ("participant_payable:alpha", Decimal("10"), "EUR")])
    # Half by data volume: alpha, alone in the round, may have a negative value.
    policy = policy_change(actor=system_principal(), consortium=consortium, blend_alpha=Decimal("0.5"))
    pools = pools_in_every_state(consortium, valuation, policy=policy)
    statement = pools["issued"].statements.get(participant=alpha)
    filer = Principal(user=MembershipFactory(consortium=consortium, role="participant", participant=alpha).user)
    dispute = dispute_file(actor=filer, statement=statement, line="amount", reason="Too low.", attachment=b"%PDF-1.4",
                           attachment_filename="evidence.pdf", attachment_content_type="application/pdf")
    dispute_review(actor=Principal(user=MembershipFactory(consortium=consortium, role="governance").user),
                   dispute=dispute)
    checkpoint_create()
    users = {role: MembershipFactory(consortium=consortium, role=role).user for role in ("finance", "governance")}
    revocable = ApiKeyFactory(consortium=consortium, scopes=["read"])  # not the fuzzer's own key
    return {"key": key, "users": users, "path_parameters": {
        "slug": consortium.slug, "run_id": str(run.pk), "participant_slug": "alpha", "t": 1,
        "key_id": str(revocable.pk), "seq": 0, "tree_size": 1, "valuation_run_id": str(valuation.pk),
        "pool_id": str(pools["drafted"].pk), "statement_id": str(statement.pk), "dispute_id": str(dispute.pk)}}


def _client(world, caller: str) -> Client:
    client = Client()
    if caller == "key":
        client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {world['key'].raw_key}"
    else:
        client.force_login(world["users"][caller])
    return client


def _raw(body) -> bytes:
    """A generated body the schema does not describe as a dict of fields, as bytes to send."""
    if isinstance(body, bytes):
        return body
    if hasattr(body, "data") and isinstance(body.data, bytes):
        return body.data
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return json.dumps(body, default=lambda value: value.data.hex() if hasattr(value, "data") else str(value)).encode()


def _multipart_value(value):
    if hasattr(value, "data") and isinstance(value.data, bytes):  # schemathesis' Binary
        return SimpleUploadedFile("fuzzed.npz", value.data)
    if isinstance(value, bytes):
        return SimpleUploadedFile("fuzzed.npz", value)
    return value if isinstance(value, str) else _raw(value).decode("utf-8", "replace")


def send(client: Client, case):
    """The case as a request through Django's test client (in the test's transaction)."""
    url = case.formatted_path + (f"?{urlencode(case.query, doseq=True)}" if case.query else "")
    headers = {f"HTTP_{name.upper().replace('-', '_')}": str(value) for name, value in (case.headers or {}).items()
               if name.lower() not in ("authorization", "content-type", "content-length", "cookie")}
    body = None if isinstance(case.body, NotSet) else case.body
    if body is None and case.media_type is None:
        return client.generic(case.method, url, **headers)
    if case.media_type == "multipart/form-data" and isinstance(body, dict):
        fields = {name: _multipart_value(value) for name, value in body.items()}
        return client.generic(case.method, url, encode_multipart(BOUNDARY, fields), MULTIPART_CONTENT, **headers)
    if case.media_type == "multipart/form-data":
        return client.generic(case.method, url, _raw(body), MULTIPART_CONTENT, **headers)
    if case.media_type in (None, "application/json") and not isinstance(body, (bytes, str)):
        return client.generic(case.method, url, _raw(body), "application/json", **headers)
    return client.generic(case.method, url, _raw(body), case.media_type, **headers)


def check(label: str, response, seen: Counter) -> None:
    seen[response.status_code] += 1
    assert response.status_code < 500, (label, response.status_code, response.content[:500])
    if label.endswith(".csv") and response.status_code == 200:
        assert response["Content-Type"].startswith("text/csv"), (label, response["Content-Type"])
        return
    if label.endswith("/attachment") and response.status_code == 200:
        # A dispute's attachment comes back as the participant sent it, never to be rendered.
        assert response["Content-Disposition"].startswith("attachment"), label
        assert response["X-Content-Type-Options"] == "nosniff", label
        return
    if label.endswith(".pdf") and response.status_code == 200:
        assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF-"), label
        return
    assert response["Content-Type"].startswith("application/json"), (label, response["Content-Type"])
    if response.status_code >= 400:
        assert set(response.json()) == {"error"} and response.json()["error"]["message"], response.content[:300]


def _callers(label: str) -> list[str]:
    if label.endswith("/validation-set"):
        return ["key", "governance"]
    if label.startswith("PATCH /api/v1/consortia/"):
        return ["governance"]
    return ["key", "finance"]


def _negatable(operation, real_objects: bool) -> bool:
    """Whether the schema leaves inputs that can be made invalid: a query, a body, a header
    besides the credentials, or (with generated paths) a typed path parameter."""
    typed_path = any(p.definition.get("schema", {}).get("type") != "string" for p in operation.path_parameters)
    return (bool(list(operation.query)) or bool(list(operation.body)) or len(list(operation.headers)) > 1
            or (typed_path and not real_objects))


def _takes_a_file(label: str) -> bool:
    return label.startswith("PUT /api/v1/training-runs/")


def _combinations():
    for label, operation in sorted(OPERATIONS.items()):
        for real_objects in (False, True) if operation.path_parameters else (False,):
            where = "real-objects" if real_objects else "generated-paths"
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if mode is GenerationMode.POSITIVE or _negatable(operation, real_objects):
                    yield pytest.param(label, mode, real_objects, False, id=f"{label}-{mode.value}-{where}")
                if real_objects and _takes_a_file(label):
                    # Random bytes never make an archive: these cases carry a valid one, so that
                    # the other fields (num_examples, rounds, headers) reach the services.
                    yield pytest.param(label, mode, real_objects, True, id=f"{label}-{mode.value}-{where}-valid-file")


def _with_valid_file(case, label: str) -> None:
    if isinstance(case.body, dict):
        digest = hashlib.sha256(repr(sorted(case.body)).encode() + repr(case.path_parameters).encode()).digest()
        seed = int.from_bytes(digest[:4], "big")
        arrays = validation_arrays(seed=seed) if label.endswith("/validation-set") else logistic_arrays(seed)
        case.body["file"] = npz_bytes(**arrays)


@pytest.mark.parametrize(("label", "mode", "real_objects", "valid_file"), list(_combinations()))
def test_no_input_gives_a_server_error(world, label, mode, real_objects, valid_file):
    operation = OPERATIONS[label]
    names = {parameter.name for parameter in operation.path_parameters}
    fixed = {name: value for name, value in world["path_parameters"].items() if name in names} if real_objects else None
    if valid_file:
        fixed.pop("t", None)  # a generated round: new slots as well as the filled one
    clients = {caller: _client(world, caller) for caller in _callers(label)}
    seen: Counter = Counter()

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        if valid_file:
            _with_valid_file(case, label)
        for client in clients.values():
            check(label, send(client, case), seen)

    fuzz()
    assert sum(seen.values()) >= len(clients)  # the strategy produced cases and they were sent
    if REPORT:
        with open(REPORT, "a") as report:
            report.write(json.dumps({"operation": label, "mode": mode.value, "real_objects": real_objects,
                                     "valid_file": valid_file, "statuses": dict(seen)}) + "\n")
