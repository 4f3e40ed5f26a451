"""Authorization as an executable spec: every endpoint × every kind of caller → exact status.

Callers (columns, in this order):
  anon        no credentials
  fin gov aud participant users of the consortium in each role (participant speaks for alpha)
  outsider    a finance user of another consortium
  revoked     a revoked API key of the consortium
  ingest validation valuation read   API keys of the consortium with that one scope
  foreign     an API key (all scopes) of another consortium
Pages use sign-in sessions only, so API keys are anonymous there (302 to the login page).
"""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.utils import timezone

from consortium.access import Principal
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes, validation_arrays
from valuation.ingest import training_run_create

CALLERS = ["anon", "fin", "gov", "aud", "participant", "outsider", "revoked",
           "ingest", "validation", "valuation", "read", "foreign"]
KEY_SCOPES = {"ingest": ["ingest"], "validation": ["validation"], "valuation": ["valuation"], "read": ["read"]}


def _run_body(world):
    return {"name": f"run-{timezone.now().timestamp()}", "model_family": "logistic", "task": "binary",
            "metric": "auc", "parameter_spec": LOGISTIC_SPEC}


def _file(arrays):
    return lambda world: {"file": SimpleUploadedFile("a.npz", npz_bytes(**arrays))}


# (method, path, body builder or None, body format, expected statuses in CALLERS order)
MATRIX = [
    ("GET", "/api/v1/consortia/", None, None,                     "401 200 200 200 200 200 401 200 200 200 200 200"),
    ("GET", "/api/v1/consortia/{slug}/", None, None,              "401 200 200 200 200 404 401 200 200 200 200 404"),
    ("PATCH", "/api/v1/consortia/{slug}/", lambda w: {"transparency": "ranks"}, "json",
                                                                  "401 403 200 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/consortia/{slug}/participants/", None, None, "401 200 200 200 200 404 401 200 200 200 200 404"),
    ("GET", "/api/v1/consortia/{slug}/memberships/", None, None,  "401 200 200 200 403 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/consortia/{slug}/audit-events/", None, None, "401 200 200 200 403 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/consortia/{slug}/api-keys/", None, None,     "401 200 200 200 403 404 401 403 403 403 200 404"),
    ("POST", "/api/v1/consortia/{slug}/api-keys/", lambda w: {"name": "k", "scopes": ["read"]}, "json",
                                                                  "401 201 403 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/consortia/{slug}/api-keys/{key_id}/revoke", None, "json",
                                                                  "401 200 403 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/training-runs/", None, None,                 "401 200 200 200 200 200 401 200 200 200 200 200"),
    ("POST", "/api/v1/training-runs/", _run_body, "json",         "401 403 403 403 403 403 401 201 403 403 403 201"),
    ("GET", "/api/v1/training-runs/{run}/", None, None,           "401 200 200 200 200 404 401 200 200 200 200 404"),
    ("PUT", "/api/v1/training-runs/{run}/rounds/0/global-weights", _file(logistic_arrays()), "multipart",
                                                                  "401 403 403 403 403 404 401 201 403 403 403 404"),
    ("PUT", "/api/v1/training-runs/{run}/rounds/0/updates/alpha",
     lambda w: {**_file(logistic_arrays())(w), "num_examples": 10}, "multipart",
                                                                  "401 403 403 403 403 404 401 201 403 403 403 404"),
    ("PUT", "/api/v1/training-runs/{run}/validation-set", _file(validation_arrays()), "multipart",
                                                                  "401 403 201 403 403 404 401 403 201 403 403 404"),
    # Public, but a revoked key is still refused rather than silently ignored.
    ("GET", "/api/v1/schema/", None, None,                        "200 200 200 200 200 200 401 200 200 200 200 200"),
    ("GET", "/healthz", None, None,                               "200 200 200 200 200 200 200 200 200 200 200 200"),
    ("GET", "/", None, None,                                      "302 200 200 200 200 200 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/", None, None,                             "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/runs/{run}/", None, None,                  "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/api-keys/", None, None,                    "302 200 200 200 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/api-keys/", lambda w: {"name": "k", "scopes": ["read"]}, "form",
                                                                  "302 200 403 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/api-keys/{key_id}/revoke", None, "form",  "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/audit/", None, None,                       "302 200 200 200 403 404 302 302 302 302 302 302"),
]

CASES = [
    pytest.param(method, path, body, fmt, caller, int(code), id=f"{method} {path} as {caller}")
    for method, path, body, fmt, codes in MATRIX
    for caller, code in zip(CALLERS, codes.split(), strict=True)
]


@pytest.fixture
def world(db):
    consortium = ConsortiumFactory(slug="acme")
    alpha = ParticipantFactory(consortium=consortium, slug="alpha")
    other = ConsortiumFactory(slug="other")
    keys = {name: ApiKeyFactory(consortium=consortium, scopes=scopes) for name, scopes in KEY_SCOPES.items()}
    keys["revoked"] = ApiKeyFactory(consortium=consortium, scopes=["ingest", "read"], revoked_at=timezone.now())
    keys["foreign"] = ApiKeyFactory(consortium=other, scopes=["ingest", "validation", "valuation", "read"])
    users = {
        role: MembershipFactory(consortium=consortium, role=full, participant=alpha if full == "participant" else None).user
        for role, full in [("fin", "finance"), ("gov", "governance"), ("aud", "auditor"), ("participant", "participant")]
    }
    users["outsider"] = MembershipFactory(consortium=other, role="finance").user
    run = training_run_create(actor=Principal(api_key=keys["ingest"]), consortium=consortium, name="r",
                              model_family="logistic", task="binary", metric="auc", parameter_spec=LOGISTIC_SPEC)
    target_key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    return {"consortium": consortium, "run": run, "keys": keys, "users": users, "target_key": target_key}


def _client_for(world, caller: str) -> Client:
    client = Client()
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    elif caller in world["keys"]:
        client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {world['keys'][caller].raw_key}"
    return client


def _send(client: Client, method: str, url: str, body, fmt):
    if method == "GET":
        return client.get(url)
    if fmt == "json":
        return client.generic(method, url, data=json.dumps(body or {}), content_type="application/json")
    if fmt == "multipart":
        return client.generic(method, url, data=encode_multipart(BOUNDARY, body), content_type=MULTIPART_CONTENT)
    return client.post(url, data=body or {})


@pytest.mark.parametrize(("method", "path", "body", "fmt", "caller", "expected"), CASES)
def test_permission_matrix(world, method, path, body, fmt, caller, expected):
    url = path.format(slug=world["consortium"].slug, run=world["run"].pk, key_id=world["target_key"].pk)
    response = _send(_client_for(world, caller), method, url, body(world) if body else None, fmt)
    assert response.status_code == expected, getattr(response, "content", b"")[:300]


def test_matrix_covers_every_api_route():
    """A new API route must be added to the matrix above (or to its app's own matrix)."""
    from django.urls import get_resolver

    covered = {path for _m, path, *_ in MATRIX}
    ledger_covered = "ledger"  # the ledger's read-only API has its own matrix in tests/ledger
    routes = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                routes.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns)
    api_routes = [r for r in routes if r.startswith("api/v1/") and "docs" not in r and ledger_covered not in r]
    normalised = {
        "/" + r.replace("<slug:slug>", "{slug}").replace("<uuid:run_id>", "{run}").replace("<uuid:key_id>", "{key_id}")
        .replace("<int:t>", "0").replace("<slug:participant_slug>", "alpha")
        for r in api_routes
    }
    assert normalised <= covered, sorted(normalised - covered)

