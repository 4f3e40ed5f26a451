"""Fuzzing the pages: whatever a browser (or a script) sends, a page answers 2xx, 3xx or 4xx.

Hypothesis generates path segments, query strings and form fields for every page, signed in
as each role; a fixed seed (``derandomize``) keeps CI repeatable and ``FUZZ_EXAMPLES`` sets
the number of examples (default 8 per page and role).
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium.access import Principal
from tests.factories import ApiKeyFactory, MembershipFactory, ParticipantFactory
from tests.test_permissions import _ledger_transfer, _settled, _valued
from tests.valuation.conftest import LOGISTIC_SPEC
from valuation.services import training_run_create

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
ROLES = ["finance", "governance", "auditor", "participant"]
# With FUZZ_REPORT=path, each test adds its status tallies to that JSON-lines file.
REPORT = os.environ.get("FUZZ_REPORT")

# Short arbitrary text, and long runs that test every column and field length.
text = st.one_of(st.text(max_size=80), st.builds(lambda n, ch: ch * n, st.integers(100, 20_000), st.characters()))
segment = st.one_of(text, st.sampled_from(["acme", "other", "00000000-0000-0000-0000-000000000000", "..", "%00"]))
QUERY_KEYS = ["page", "next", "q", "format", "status", "kind", "participant", "reference_type", "reference_id",
              "account", "seq_from", "seq_to", "date_from", "date_to", "before", "after", "list", "method",
              "training_run", "note"]
FORM_FIELDS = ["name", "scopes", "csrfmiddlewaretoken", "username", "password", "training_run", "method", "budget",
               "tolerance", "seed", "metric", "rounds", "reference", "period", "amount", "currency", "valuation_runs",
               "policy", "payment_reference", "line", "reason", "outcome", "note", "valuation_run", "old_password",
               "new_password1", "new_password2"]
query = st.dictionaries(st.sampled_from(QUERY_KEYS),
                        st.one_of(text, st.integers().map(str), st.sampled_from(["csv", "last", "json", "verifier"])),
                        max_size=3)
form = st.dictionaries(st.sampled_from(FORM_FIELDS),
                       st.one_of(text, st.lists(text, max_size=3), st.integers().map(str),
                                 st.sampled_from(["ingest", "read", "exact", "EUR", "0.001", "-5", "upheld", "amount"])),
                       max_size=6)

PAGES = [
    ("GET", "/"),
    ("GET", "/c/{slug}/"),
    ("GET", "/c/{slug}/runs/"),
    ("GET", "/c/{slug}/runs/{run}/"),
    ("GET", "/c/{slug}/api-keys/"),
    ("POST", "/c/{slug}/api-keys/"),
    ("POST", "/c/{slug}/api-keys/{key}/revoke"),
    ("GET", "/c/{slug}/audit/"),
    ("GET", "/login/"),
    ("POST", "/login/"),
    ("GET", "/password/"),
    ("POST", "/password/"),
    ("GET", "/c/{slug}/valuations/"),
    ("POST", "/c/{slug}/valuations/"),
    ("GET", "/c/{slug}/valuations/{vrun}/"),
    ("GET", "/c/{slug}/valuations/{vrun}/progress"),
    ("GET", "/c/{slug}/contributions/"),
    ("GET", "/c/{slug}/pools/"),
    ("POST", "/c/{slug}/pools/"),
    ("GET", "/c/{slug}/pools/{pool}/"),
    ("POST", "/c/{slug}/pools/{pool}/{action}"),
    ("GET", "/c/{slug}/statements/"),
    ("GET", "/c/{slug}/statements/{statement}/"),
    ("GET", "/c/{slug}/statements/{statement}/dispute"),
    ("POST", "/c/{slug}/statements/{statement}/dispute"),
    ("GET", "/c/{slug}/disputes/"),
    ("GET", "/c/{slug}/disputes/{dispute}/"),
    ("POST", "/c/{slug}/disputes/{dispute}/{action}"),
    ("GET", "/c/{slug}/ledger/"),
    ("GET", "/c/{slug}/ledger/{seq}/"),
    ("GET", "/c/{slug}/ledger/export"),
    ("GET", "/c/{slug}/checkpoints/"),
]
ACTIONS = ["draft", "approve", "issue", "paid", "review", "revaluation", "decide"]


PLACEHOLDERS = ["slug", "run", "key", "vrun", "pool", "statement", "dispute", "seq", "action"]


@pytest.fixture
def world(request, consortium, django_capture_on_commit_callbacks):
    """Members in each role, a training run and a key; and, only where the page's path
    reaches them, a succeeded valuation, pools in every state and disputes (costly)."""
    path = request.node.callspec.params["path"]
    alpha = ParticipantFactory(consortium=consortium, slug="alpha")
    ParticipantFactory(consortium=consortium, slug="beta")
    keys = {"ingest": ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation", "valuation"])}
    run = training_run_create(actor=Principal(api_key=keys["ingest"]), consortium=consortium, name="r",
                              model_family="logistic", task="binary", metric="auc", parameter_spec=LOGISTIC_SPEC)
    users = {role: MembershipFactory(consortium=consortium, role=role,
                                     participant=alpha if role == "participant" else None).user for role in ROLES}
    values = {"slug": consortium.slug, "run": str(run.pk), "key": str(keys["ingest"].pk),
              "seq": str(_ledger_transfer(consortium, "alpha").seq)}
    if any(name in path for name in ("{vrun}", "{pool}", "{statement}", "{dispute}", "pools/", "valuations/")):
        succeeded, _ = _valued(run, keys, django_capture_on_commit_callbacks)
        values["vrun"] = str(succeeded.pk)
        if any(name in path for name in ("{pool}", "{statement}", "{dispute}")):
            settled = _settled(consortium, succeeded, alpha, disputes_needed="{dispute}" in path)
            values.update(pool=str(settled["drafted_pool"]), statement=str(settled["alpha_statement"]),
                          dispute=str(settled.get("open_dispute", "")))
    return {"users": users, "values": values}


def _fill(path: str, world, fuzzed: dict, real: set, action: str) -> str:
    from urllib.parse import quote

    values = {name: world["values"].get(name, "") if name in real else quote(fuzzed[name], safe="")
              for name in PLACEHOLDERS}
    if "action" in real:
        values["action"] = action
    return path.format(**values)


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
@pytest.mark.parametrize(("method", "path"), PAGES, ids=[f"{m} {p}" for m, p in PAGES])
def test_no_page_answers_a_server_error(world, role, method, path):
    client = Client()
    if role != "anonymous":  # the sign-in form is only processed for visitors who are not signed in
        client.force_login(world["users"][role])
    statuses: Counter = Counter()

    # Each placeholder is real or fuzzed on its own, so a real consortium with a made-up pool
    # id (or the reverse) is tried as well as all-real and all-fuzzed paths.
    @given(fuzzed=st.fixed_dictionaries({name: segment for name in PLACEHOLDERS}),
           real=st.sets(st.sampled_from(PLACEHOLDERS)) | st.just(set(PLACEHOLDERS)),
           action=st.sampled_from(ACTIONS), params=query, fields=form)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(fuzzed, real, action, params, fields):
        url = _fill(path, world, fuzzed, real, action)
        response = client.get(url, params) if method == "GET" else client.post(url, fields)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (url, params, fields, response.status_code)

    fuzz()
    assert statuses  # requests were sent
    if REPORT:
        with open(REPORT, "a") as report:
            report.write(json.dumps({"page": f"{method} {path}", "role": role, "statuses": dict(statuses)}) + "\n")
