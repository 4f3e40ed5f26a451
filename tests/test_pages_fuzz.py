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

from tests.factories import ApiKeyFactory, MembershipFactory, ParticipantFactory
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
query = st.dictionaries(st.sampled_from(["page", "next", "q", "o", "p"]), st.one_of(text, st.integers().map(str)),
                        max_size=3)
form = st.dictionaries(st.sampled_from(["name", "scopes", "csrfmiddlewaretoken", "username", "password"]),
                       st.one_of(text, st.lists(text, max_size=3), st.sampled_from(["ingest", "read", "root"])),
                       max_size=5)

PAGES = [
    ("GET", "/"),
    ("GET", "/c/{slug}/"),
    ("GET", "/c/{slug}/runs/{run}/"),
    ("GET", "/c/{slug}/api-keys/"),
    ("POST", "/c/{slug}/api-keys/"),
    ("POST", "/c/{slug}/api-keys/{key}/revoke"),
    ("GET", "/c/{slug}/audit/"),
    ("GET", "/login/"),
    ("POST", "/login/"),
]


@pytest.fixture
def world(consortium):
    alpha = ParticipantFactory(consortium=consortium, slug="alpha")
    key = ApiKeyFactory(consortium=consortium, scopes=["read"])
    from consortium.access import Principal

    run = training_run_create(actor=Principal(api_key=key), consortium=consortium, name="r", model_family="logistic",
                              task="binary", metric="auc", parameter_spec=LOGISTIC_SPEC)
    users = {role: MembershipFactory(consortium=consortium, role=role,
                                     participant=alpha if role == "participant" else None).user for role in ROLES}
    return {"users": users, "run": str(run.pk), "key": str(key.pk)}


def _fill(path: str, world, slug, run, key, real: bool) -> str:
    from urllib.parse import quote

    values = {"slug": "acme", "run": world["run"], "key": world["key"]} if real else {
        "slug": quote(slug, safe=""), "run": quote(run, safe=""), "key": quote(key, safe="")}
    return path.format(**values)


@pytest.mark.parametrize("role", [*ROLES, "anonymous"])
@pytest.mark.parametrize(("method", "path"), PAGES, ids=[f"{m} {p}" for m, p in PAGES])
def test_no_page_answers_a_server_error(world, role, method, path):
    client = Client()
    if role != "anonymous":  # the sign-in form is only processed for visitors who are not signed in
        client.force_login(world["users"][role])
    statuses: Counter = Counter()

    @given(slug=segment, run=segment, key=segment, real=st.booleans(), params=query, fields=form)
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(slug, run, key, real, params, fields):
        url = _fill(path, world, slug, run, key, real)
        response = client.get(url, params) if method == "GET" else client.post(url, fields)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (url, params, fields, response.status_code)

    fuzz()
    assert statuses  # requests were sent
    if REPORT:
        with open(REPORT, "a") as report:
            report.write(json.dumps({"page": f"{method} {path}", "role": role, "statuses": dict(statuses)}) + "\n")
