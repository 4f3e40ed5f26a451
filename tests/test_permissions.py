"""Authorization as an executable spec: every endpoint × every kind of caller → exact status.

Callers (columns, in this order):
  anon        no credentials
  fin gov aud participant users of the consortium in each role (participant speaks for alpha)
  outsider    a finance user of another consortium
  revoked     a revoked API key of the consortium (scopes ingest and read)
  ingest validation valuation read   API keys of the consortium with that one scope
  foreign     an API key (all scopes) of another consortium
Pages use sign-in sessions only, so API keys are anonymous there (302 to the login page).

The consortium has participants alpha and beta and a training run with one round of both,
valued once (succeeded) and requested a second time (queued), and three revenue pools on
that valuation: drafted, approved and issued (statements of alpha and beta), each drafted
and approved by finance users other than ``fin``. Its ledger holds that valuation's
record, an income receipt, an entry concerning alpha, one concerning only beta, the issued
pool's entries, and a checkpoint over them all. Alpha disputes its issued statement three
times (open, under review, rejected), beta once. The ledger's checkpoints and consistency
proofs are deployment-wide, so anyone who may read some consortium's ledger (outsider,
foreign) reads them. Each row builds only the part of this world its path can reach
(``_needs``): the valuation, the pools and the disputes cost most of a row's time. A row's
twelve callers then send their request in turn, each in a savepoint rolled back afterwards,
so every caller meets the same world; a failure names each caller whose status differs.

Every refusal under /api/v1/ must have the one documented error body, ``{"error": ...}``.
"""

import json
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import get_resolver
from django.utils import timezone

from consortium.access import Principal
from ledger.services import checkpoint_create, entry_append
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.incentives.worlds import disputes_in_every_state, pools_in_every_state
from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes, validation_arrays
from valuation.services import (
    global_weights_upload,
    training_run_create,
    update_upload,
    validation_set_upload,
    valuation_run_start,
)

CALLERS = ["anon", "fin", "gov", "aud", "participant", "outsider", "revoked",
           "ingest", "validation", "valuation", "read", "foreign"]
KEY_SCOPES = {"ingest": ["ingest"], "validation": ["validation"], "valuation": ["valuation"], "read": ["read"]}


def _run_body(world):
    return {"name": f"run-{timezone.now().timestamp()}", "model_family": "logistic", "task": "binary",
            "metric": "auc", "parameter_spec": LOGISTIC_SPEC}


def _pool_body(world):
    return {"reference": "2026-q9", "period": "2026-Q9", "amount": "500.00", "currency": "EUR",
            "valuation_runs": [str(world["url_values"]["vrun"])]}


def _file(arrays):
    return lambda world: {"file": SimpleUploadedFile("a.npz", npz_bytes(**arrays))}


# (method, path, body builder or None, body format, expected statuses in CALLERS order)
# Route parameters are {placeholders} filled from world["url_values"] (or literal numbers),
# so that the coverage test below can tell which route a row exercises.
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
    ("PUT", "/api/v1/training-runs/{run}/rounds/0/updates/{alpha}",
     lambda w: {**_file(logistic_arrays())(w), "num_examples": 10}, "multipart",
                                                                  "401 403 403 403 403 404 401 201 403 403 403 404"),
    ("PUT", "/api/v1/training-runs/{run}/validation-set", _file(validation_arrays()), "multipart",
                                                                  "401 403 201 403 403 404 401 403 201 403 403 404"),
    # The ledger of a consortium: staff and read keys see every entry, a participant user only
    # those concerning alpha (404 for the rest, as if absent); the other scopes carry no
    # view_ledger, so those keys get 403 even for a seq that does not exist.
    ("GET", "/api/v1/consortia/{slug}/ledger/entries/", None, None,
                                                                  "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/consortia/{slug}/ledger/entries/{alpha_seq}/", None, None,
                                                                  "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/consortia/{slug}/ledger/entries/{beta_seq}/", None, None,
                                                                  "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/consortia/{slug}/ledger/entries/{missing_seq}/", None, None,
                                                                  "401 404 404 404 404 404 401 403 403 403 404 404"),
    ("GET", "/api/v1/consortia/{slug}/ledger/balances/", None, None,
                                                                  "401 200 200 200 200 404 401 403 403 403 200 404"),
    # Deployment-wide: any caller who may read some consortium's ledger, so also outsider
    # and foreign (they read it in their own consortium).
    ("GET", "/api/v1/ledger/checkpoints/", None, None,            "401 200 200 200 200 200 401 403 403 403 200 200"),
    ("GET", "/api/v1/ledger/checkpoints/latest/", None, None,     "401 200 200 200 200 200 401 403 403 403 200 200"),
    ("GET", "/api/v1/ledger/checkpoints/{tree_size}/", None, None,
                                                                  "401 200 200 200 200 200 401 403 403 403 200 200"),
    ("GET", "/api/v1/ledger/consistency/?old=1&new={tree_size}", None, None,
                                                                  "401 200 200 200 200 200 401 403 403 403 200 200"),
    # Public, but a revoked key is still refused rather than silently ignored.
    ("GET", "/api/v1/ledger/public-key/", None, None,             "200 200 200 200 200 200 401 200 200 200 200 200"),
    # Valuation runs: started by finance, governance and valuation keys; read by staff, the
    # participant (its figures per transparency) and valuation or read keys. The run in
    # {vrun} has succeeded (cancelling it is a 409); {queued_vrun} is still queued.
    ("GET", "/api/v1/valuation-runs/", None, None,                "401 200 200 200 200 200 401 403 403 200 200 200"),
    ("POST", "/api/v1/valuation-runs/", lambda w: {"training_run": str(w["run"].pk), "method": "exact"}, "json",
                                                                  "401 202 202 403 403 404 401 403 403 202 403 404"),
    ("GET", "/api/v1/valuation-runs/{vrun}/", None, None,         "401 200 200 200 200 404 401 403 403 200 200 404"),
    ("POST", "/api/v1/valuation-runs/{vrun}/cancel/", None, "json",
                                                                  "401 409 409 403 403 404 401 403 403 409 403 404"),
    ("POST", "/api/v1/valuation-runs/{queued_vrun}/cancel/", None, "json",
                                                                  "401 200 200 403 403 404 401 403 403 200 403 404"),
    ("GET", "/api/v1/valuation-runs/{vrun}/results/", None, None, "401 200 200 200 200 404 401 403 403 200 200 404"),
    ("GET", "/api/v1/valuation-runs/{vrun}/results.csv", None, None,
                                                                  "401 200 200 200 200 404 401 403 403 200 200 404"),
    ("GET", "/api/v1/consortia/{slug}/policies/", None, None,     "401 200 200 200 200 404 401 200 200 200 200 404"),
    ("POST", "/api/v1/consortia/{slug}/policies/", lambda w: {"reserve_rate": "0.05", "note": "n"}, "json",
     "401 403 201 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/consortia/{slug}/revenue-pools/", None, None, "401 200 200 200 403 404 401 403 403 403 200 404"),
    ("POST", "/api/v1/consortia/{slug}/revenue-pools/", _pool_body, "json",
     "401 201 403 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/revenue-pools/{drafted_pool}/", None, None,   "401 200 200 200 403 404 401 403 403 403 200 404"),
    ("PATCH", "/api/v1/revenue-pools/{drafted_pool}/", lambda w: {"period": "2026-Q9"}, "json",
     "401 200 403 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/revenue-pools/{drafted_pool}/draft/", None, "json",
     "401 200 403 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/revenue-pools/{drafted_pool}/approve/", None, "json",
     "401 200 403 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/revenue-pools/{approved_pool}/issue/", None, "json",
     "401 200 403 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/revenue-pools/{issued_pool}/paid/", lambda w: {"payment_reference": "SEPA-1"}, "json",
     "401 200 403 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/statements/", None, None,                     "401 200 200 200 200 200 401 403 403 403 200 200"),
    ("GET", "/api/v1/statements/{alpha_statement}/", None, None,   "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{beta_statement}/", None, None,    "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{draft_statement}/", None, None,   "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{alpha_statement}/document.json", None, None,
     "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{beta_statement}/document.json", None, None,
     "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{draft_statement}/document.json", None, None,
     "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{alpha_statement}/document.csv", None, None,
     "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{beta_statement}/document.csv", None, None,
     "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{alpha_statement}/document.pdf", None, None,
     "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/statements/{draft_statement}/document.pdf", None, None,
     "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/c/{slug}/statements/{alpha_statement}/", None, None, "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/statements/{beta_statement}/", None, None,  "302 200 200 200 404 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/statements/{draft_statement}/", None, None, "302 200 200 200 404 404 302 302 302 302 302 302"),
    ("POST", "/api/v1/statements/{alpha_statement}/disputes/", lambda w: {"line": "share", "reason": "r"}, "json",
     "401 403 403 403 201 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/statements/{beta_statement}/disputes/", lambda w: {"line": "share", "reason": "r"}, "json",
     "401 403 403 403 404 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/statements/{draft_statement}/disputes/", lambda w: {"line": "share", "reason": "r"}, "json",
     "401 403 403 403 404 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/disputes/", None, None,                      "401 200 200 200 200 200 401 403 403 403 200 200"),
    ("GET", "/api/v1/disputes/{open_dispute}/", None, None,       "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/disputes/{beta_dispute}/", None, None,       "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("POST", "/api/v1/disputes/{open_dispute}/review/", None, "json",
     "401 403 200 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/disputes/{reviewed_dispute}/revaluation/", lambda w: {"method": "exact"}, "json",
     "401 403 200 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/disputes/{reviewed_dispute}/comparison/", None, None,
     "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("POST", "/api/v1/disputes/{reviewed_dispute}/decide/", lambda w: {"outcome": "rejected"}, "json",
     "401 403 200 403 403 404 401 403 403 403 403 404"),
    ("POST", "/api/v1/disputes/{decided_dispute}/decide/", lambda w: {"outcome": "rejected"}, "json",
     "401 403 409 403 403 404 401 403 403 403 403 404"),
    ("GET", "/api/v1/disputes/{open_dispute}/attachment", None, None,
     "401 200 200 200 200 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/disputes/{beta_dispute}/attachment", None, None,
     "401 200 200 200 404 404 401 403 403 403 200 404"),
    ("GET", "/api/v1/schema/", None, None,                        "200 200 200 200 200 200 401 200 200 200 200 200"),
    ("GET", "/api/v1/docs/", None, None,                          "200 200 200 200 200 200 401 200 200 200 200 200"),
    ("GET", "/healthz", None, None,                               "200 200 200 200 200 200 200 200 200 200 200 200"),
    ("GET", "/", None, None,                                      "302 200 200 200 200 200 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/", None, None,                             "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/runs/{run}/", None, None,                  "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/api-keys/", None, None,                    "302 200 200 200 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/api-keys/", lambda w: {"name": "k", "scopes": ["read"]}, "form",
                                                                  "302 200 403 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/api-keys/{key_id}/revoke", None, "form",  "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/audit/", None, None,                       "302 200 200 200 403 404 302 302 302 302 302 302"),
    ("GET", "/password/", None, None,                             "302 200 200 200 200 200 302 302 302 302 302 302"),
    # The dashboard pages of issue #13. Valuation runs: started by finance and governance; read
    # by every member (a participant sees its figures per transparency); the progress part of
    # a finished run answers 286, which tells htmx to stop polling.
    ("GET", "/c/{slug}/runs/", None, None,                        "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/valuations/", None, None,                  "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/valuations/", lambda w: {"training_run": str(w["run"].pk), "method": "exact", "seed": "3"},
     "form",                                                      "302 302 302 403 403 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/valuations/{vrun}/", None, None,           "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/valuations/{vrun}/progress", None, None,   "302 286 286 286 286 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/valuations/{queued_vrun}/progress", None, None,
                                                                  "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/contributions/", None, None,               "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/contributions/?participant=beta", None, None,
                                                                  "302 200 200 200 404 404 302 302 302 302 302 302"),
    # Revenue pools: finance manages them (four eyes: fin drafted none of them), governance and
    # auditors read them, participants read their statements instead.
    ("GET", "/c/{slug}/pools/", None, None,                       "302 200 200 200 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/pools/", lambda w: {"reference": "page-pool", "period": "2026-Q2", "amount": "500.00",
                                            "currency": "EUR", "valuation_runs": [str(w["url_values"]["vrun"])]},
     "form",                                                      "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/pools/{issued_pool}/", None, None,         "302 200 200 200 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/pools/{drafted_pool}/draft", None, "form", "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/pools/{drafted_pool}/approve", None, "form",
                                                                  "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/pools/{approved_pool}/issue", None, "form", "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/pools/{issued_pool}/paid", lambda w: {"payment_reference": "SEPA-1"}, "form",
                                                                  "302 302 403 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/pools/{drafted_pool}/refund", None, "form",
                                                                  "302 404 404 404 404 404 302 302 302 302 302 302"),
    # Statements and disputes: a participant files against its own issued statement only.
    ("GET", "/c/{slug}/statements/", None, None,                  "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/statements/{alpha_statement}/dispute", None, None,
                                                                  "302 403 403 403 200 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/statements/{alpha_statement}/dispute", lambda w: {"line": "share", "reason": "Too low."},
     "form",                                                      "302 403 403 403 302 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/statements/{beta_statement}/dispute", None, None,
                                                                  "302 403 403 403 404 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/disputes/", None, None,                    "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/disputes/{open_dispute}/", None, None,     "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/disputes/{beta_dispute}/", None, None,     "302 200 200 200 404 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/disputes/{open_dispute}/review", None, "form",
                                                                  "302 403 302 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/disputes/{reviewed_dispute}/revaluation", lambda w: {"method": "exact", "seed": "4"}, "form",
                                                                  "302 403 302 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/disputes/{reviewed_dispute}/decide", lambda w: {"outcome": "rejected", "note": "Counts match."},
     "form",                                                      "302 403 302 403 403 404 302 302 302 302 302 302"),
    ("POST", "/c/{slug}/disputes/{decided_dispute}/decide", lambda w: {"outcome": "rejected", "note": "Again."},
     "form",                                                      "302 403 409 403 403 404 302 302 302 302 302 302"),
    # The ledger's pages: a participant reads the entries concerning alpha and exports those
    # (every other entry as its leaf hash only).
    ("GET", "/c/{slug}/ledger/", None, None,                      "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/ledger/{alpha_seq}/", None, None,          "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/ledger/{beta_seq}/", None, None,           "302 200 200 200 404 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/ledger/export", None, None,                "302 200 200 200 200 404 302 302 302 302 302 302"),
    ("GET", "/c/{slug}/checkpoints/", None, None,                 "302 200 200 200 200 404 302 302 302 302 302 302"),
]


ROWS = [pytest.param(method, path, body, fmt, codes, id=f"{method} {path}") for method, path, body, fmt, codes in MATRIX]


def _ledger_transfer(consortium, payee: str):
    """One entry concerning only ``payee``: the pool owes it a euro."""
    return entry_append(consortium=consortium, kind="transaction", body={}, actor="system:test",
                        reference_type="statement", reference_id=f"s-{payee}",
                        postings=[("revenue_pool", Decimal("-1"), "EUR"),
                                  (f"participant_payable:{payee}", Decimal("1"), "EUR")])


def _valued(run, keys, capture):
    """Upload round 5 of alpha and beta with a validation set, and value it (in-process):
    a succeeded valuation run, and a queued one whose tasks never ran."""
    actor = Principal(api_key=keys["ingest"])
    with capture(execute=True):
        validation_set_upload(actor=actor, training_run=run, data=npz_bytes(**validation_arrays(seed=9)))
        global_weights_upload(actor=actor, training_run=run, round=5, data=npz_bytes(**logistic_arrays(0)))
        for seed, participant in enumerate(run.consortium.participants.order_by("slug"), start=1):
            update_upload(actor=actor, training_run=run, round=5, participant=participant,
                          data=npz_bytes(**logistic_arrays(seed)), num_examples=10 * seed)
    with capture(execute=True):
        succeeded = valuation_run_start(actor=actor, training_run=run, method="exact", seed=1)
    with capture(execute=False):
        queued = valuation_run_start(actor=actor, training_run=run, method="exact", seed=2)
    return succeeded, queued


def _needs(request) -> tuple[bool, bool, bool]:
    """What of the costly part of the world the case's path uses: valuation runs, revenue
    pools (with statements), disputes. Every case builds only what its row can reach."""
    path = request.node.callspec.params.get("path", "") if hasattr(request.node, "callspec") else ""
    disputes = "dispute" in path
    settlement = disputes or "pool" in path or "statement" in path
    return settlement or "valuation" in path or "vrun" in path, settlement, disputes


@pytest.fixture
def world(request, db, django_capture_on_commit_callbacks):
    valuation, settlement, disputes_needed = _needs(request)
    consortium = ConsortiumFactory(slug="acme")
    alpha = ParticipantFactory(consortium=consortium, slug="alpha")
    ParticipantFactory(consortium=consortium, slug="beta")
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
    url_values = {}
    if valuation:
        succeeded, queued = _valued(run, keys, django_capture_on_commit_callbacks)
        url_values.update(vrun=succeeded.pk, queued_vrun=queued.pk)
    target_key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    entry_append(consortium=consortium, kind="transaction", body={"memo": "receipt"}, actor="system:test",
                 reference_type="revenue_pool", reference_id="pool-1",
                 postings=[("consortium_income", Decimal("-100"), "EUR"), ("revenue_pool", Decimal("100"), "EUR")])
    alpha_entry = _ledger_transfer(consortium, "alpha")
    beta_entry = _ledger_transfer(consortium, "beta")
    if settlement:
        url_values.update(_settled(consortium, succeeded, alpha, disputes_needed))
    checkpoint = checkpoint_create()
    # Seqs are deployment-wide and start wherever the ledger stands, so the URLs take them
    # from the entries rather than assuming 1 and 2.
    url_values.update({
        "slug": consortium.slug, "run": run.pk, "key_id": target_key.pk, "alpha": alpha.slug,
        "alpha_seq": alpha_entry.seq, "beta_seq": beta_entry.seq,
        "missing_seq": checkpoint.tree_size,  # the next seq: no entry has it yet
        "tree_size": checkpoint.tree_size,
    })
    return {"consortium": consortium, "run": run, "keys": keys, "users": users, "url_values": url_values}


def _settled(consortium, valued, alpha, disputes_needed: bool) -> dict:
    """Pools in every state on the valuation ``valued``, and (when asked) disputes."""
    pools = pools_in_every_state(consortium, valued)
    issued = {s.participant.slug: s for s in pools["issued"].statements.select_related("participant")}
    values = {
        "drafted_pool": pools["drafted"].pk, "approved_pool": pools["approved"].pk, "issued_pool": pools["issued"].pk,
        "alpha_statement": issued["alpha"].pk, "beta_statement": issued["beta"].pk,
        "draft_statement": pools["drafted"].statements.get(participant=alpha).pk,
    }
    if disputes_needed:
        disputes = disputes_in_every_state(consortium, {"alpha": issued["alpha"], "beta": issued["beta"]})
        values.update(open_dispute=disputes["open"].pk, reviewed_dispute=disputes["reviewed"].pk,
                      decided_dispute=disputes["rejected"].pk, beta_dispute=disputes["beta"].pk)
    return values


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


@pytest.mark.parametrize(("method", "path", "body", "fmt", "codes"), ROWS)
def test_permission_matrix(world, method, path, body, fmt, codes):
    """One row: every caller in turn, each in a savepoint rolled back afterwards, so each
    meets the same world (a write by one caller is not seen by the next)."""
    url = path.format(**world["url_values"])
    mismatches = []
    for caller, expected in zip(CALLERS, map(int, codes.split()), strict=True):
        savepoint = transaction.savepoint()
        try:
            response = _send(_client_for(world, caller), method, url, body(world) if body else None, fmt)
            content = b"" if getattr(response, "streaming", False) else response.content
        finally:
            transaction.savepoint_rollback(savepoint)
        if response.status_code != expected:
            mismatches.append(f"{caller}: expected {expected}, got {response.status_code}: {content[:200]!r}")
        elif path.startswith("/api/v1/") and expected >= 400 and not _is_error_body(response, content):
            # Every refusal under /api/v1/ is the JSON error body, also from the schema and docs views.
            mismatches.append(f"{caller}: {expected} without the JSON error body: {content[:200]!r}")
    assert mismatches == []


def _is_error_body(response, content: bytes) -> bool:
    return response["Content-Type"].startswith("application/json") and set(json.loads(content)) == {"error"}


# --- Every API route has a row --------------------------------------------------------------

def _route_shape(route: str) -> str:
    """``api/v1/x/<slug:slug>/<int:n>/`` → ``/api/v1/x/*/*/``: any converter is one wildcard."""
    return "/" + re.sub(r"<[^<>]+>", "*", route)


def _path_shape(path: str) -> str:
    """A matrix path in the same shape: its {placeholders} and number segments are wildcards.

    Literal words stay, so ``checkpoints/latest/`` does not cover ``checkpoints/<int:tree_size>/``.
    """
    path = path.split("?", 1)[0]
    return re.sub(r"\{[^{}]+\}|(?<=/)\d+(?=/|$)", "*", path)


def uncovered_api_routes(routes, matrix_paths) -> list[str]:
    """The routes under api/v1/ that no matrix path exercises.

    A regex route (``re_path``) keeps its regex syntax, matches no path and is reported too.
    """
    covered = {_path_shape(path) for path in matrix_paths}
    return sorted(route for route in routes
                  if route.lstrip("^").startswith("api/v1/") and _route_shape(route) not in covered)


def _all_routes() -> list[str]:
    routes = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                routes.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns)
    return routes


MATRIX_PATHS = [path for _method, path, *_ in MATRIX]


def test_matrix_covers_every_api_route():
    """A new API route, of any app, must be added to the matrix above."""
    assert uncovered_api_routes(_all_routes(), MATRIX_PATHS) == []


def uncovered_page_routes(routes, matrix_paths) -> list[str]:
    """The consortium pages (``c/<slug>/…``) that no matrix path exercises; a route's
    parameter (``<str:action>``) is covered by any value in its place."""
    paths = [_path_shape(path) for path in matrix_paths]

    def covered(route: str) -> bool:
        pattern = re.compile("^" + re.escape(_route_shape(route)).replace(r"\*", "[^/]+") + "$")
        return any(pattern.match(path) for path in paths)

    return sorted(route for route in routes if route.startswith("c/") and not covered(route))


def test_matrix_covers_every_consortium_page():
    """A new page of a consortium must be added to the matrix above too."""
    assert uncovered_page_routes(_all_routes(), MATRIX_PATHS) == []


def test_coverage_check_reports_a_route_without_row():
    new_app_route = "api/v1/invoices/<uuid:invoice_id>/lines/<int:line>/"
    assert uncovered_api_routes([*_all_routes(), new_app_route], MATRIX_PATHS) == [new_app_route]
    # A literal segment covers only itself, not a parameter in its place.
    without_tree_size_row = [p for p in MATRIX_PATHS if "{tree_size}/" not in p]
    assert uncovered_api_routes(_all_routes(), without_tree_size_row) == ["api/v1/ledger/checkpoints/<int:tree_size>/"]
