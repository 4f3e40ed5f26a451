"""Valuation pages: training runs and who uploaded what, the valuation-run list with its
filters and start form, and a run's page with its live progress and results."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from consortium.access import Principal
from consortium.models import Transparency
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.incentives.conftest import valued_run
from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes
from tests.valuation.runs.conftest import upload_rounds
from valuation.models import ParticipantScore, ValuationChunk, ValuationRun
from valuation.services import (
    global_weights_upload,
    training_run_create,
    update_upload,
    valuation_run_fail,
    valuation_run_start,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(member):
    """``signed_in(role)`` → a test client signed in as a new user with that role in acme."""

    def make(role: str) -> Client:
        client = Client()
        client.force_login(member(role))
        return client

    return make


@pytest.fixture
def outsider():
    """A finance user of another consortium."""
    client = Client()
    client.force_login(MembershipFactory(role="finance", consortium=ConsortiumFactory(slug="other")).user)
    return client


def _keys(consortium) -> Principal:
    return Principal(api_key=ApiKeyFactory(consortium=consortium, scopes=["ingest", "validation", "valuation"]))


def _run_with_uploads(consortium, participants, *, name="line-7", rounds=2, seed=0):
    actor = _keys(consortium)
    run = training_run_create(actor=actor, consortium=consortium, name=name, model_family="logistic", task="binary",
                              metric="neg_log_loss", parameter_spec=LOGISTIC_SPEC)
    upload_rounds(actor=actor, training_run=run, participants=participants, rounds=rounds, seed=seed)
    return run


@pytest.fixture
def valued(consortium, participants, django_capture_on_commit_callbacks):
    """A succeeded exact valuation of alpha, beta and gamma over two rounds."""
    with django_capture_on_commit_callbacks(execute=True):
        run = valued_run(consortium, participants, seed=3)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error_message
    return run


def queries(client, url) -> int:
    """How many queries a GET of ``url`` makes (after a first GET has warmed the session),
    with nothing in the cache (a run's per-round sums are kept there)."""
    client.get(url)
    cache.clear()
    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code in (200, 286)
    return len(context.captured_queries)


def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


# -- training runs ---------------------------------------------------------------------


def test_it_lists_training_runs_with_their_upload_counts_and_as_csv(signed_in, consortium, participants):
    _run_with_uploads(consortium, participants, rounds=2)
    client = signed_in("finance")
    page = client.get("/c/acme/runs/").content.decode()
    assert "line-7" in page and "Download CSV" in page
    rows = _csv(client.get("/c/acme/runs/", {"format": "csv"}))
    assert rows[0][:6] == ["Name", "Model", "Rounds", "Updates", "Participants uploaded", "Validation set"]
    assert rows[1][:6] == ["line-7", "logistic · binary · neg_log_loss", "2", "6", "3", "yes"]
    assert rows[1][6]  # the latest upload's time


def test_a_participant_counts_only_its_own_uploads(signed_in, consortium, participants):
    _run_with_uploads(consortium, participants, rounds=2)
    rows = _csv(signed_in("participant").get("/c/acme/runs/", {"format": "csv"}))
    assert rows[1][2:5] == ["2", "2", "1"]


def test_the_training_runs_list_reads_in_a_fixed_number_of_queries(
        signed_in, consortium, participants, django_assert_num_queries):
    client = signed_in("finance")
    _run_with_uploads(consortium, participants[:1], name="first", rounds=1)
    small = queries(client, "/c/acme/runs/")
    assert small <= 6
    for i in range(4):
        _run_with_uploads(consortium, participants, name=f"more-{i}", rounds=2, seed=i)
    with django_assert_num_queries(small):
        page = client.get("/c/acme/runs/").content.decode()
    assert page.count("more-") == 4


def _partial_run(consortium, participants):
    """Round 0 with alpha and beta's updates (gamma has not sent one); round 1 with weights only."""
    actor = _keys(consortium)
    run = training_run_create(actor=actor, consortium=consortium, name="partial", model_family="logistic",
                              task="binary", metric="auc", parameter_spec=LOGISTIC_SPEC)
    for t in (0, 1):
        global_weights_upload(actor=actor, training_run=run, round=t, data=npz_bytes(**logistic_arrays(t)))
    for examples, participant in zip((120, 80), participants[:2], strict=True):
        update_upload(actor=actor, training_run=run, round=0, participant=participant,
                      data=npz_bytes(**logistic_arrays(examples)), num_examples=examples)
    return run


def _cells(page: str) -> list[list[str]]:
    """The text of each body row of the page's (first) list table, tags left out."""
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_the_training_run_page_counts_per_round_who_uploaded_and_who_did_not(signed_in, consortium, participants):
    run = _partial_run(consortium, participants)
    client = signed_in("governance")
    page = client.get(f"/c/acme/runs/{run.pk}/").content.decode()
    assert _cells(page) == [["0", "uploaded", "2 of 3", "200", "1"], ["1", "uploaded", "0 of 3", "0", "3"]]
    assert f'href="/c/acme/runs/{run.pk}/?round=0"' in page and f'href="/c/acme/runs/{run.pk}/?round=1"' in page
    rows = _csv(client.get(f"/c/acme/runs/{run.pk}/", {"format": "csv"}))  # the CSV names everyone
    assert rows[0] == ["Round", "Global weights", "Updates", "Examples", "Uploaded (participant: examples)",
                       "Not uploaded"]
    assert rows[1] == ["0", "uploaded", "2 of 3", "200", "alpha: 120, beta: 80", "gamma"]
    assert rows[2] == ["1", "uploaded", "0 of 3", "0", "", "alpha, beta, gamma"]


def test_a_round_lists_its_updates_with_their_hashes_and_who_is_missing(signed_in, consortium, participants):
    run = _partial_run(consortium, participants)
    updates = {u.participant.slug: u for u in run.updates.select_related("participant")}
    client = signed_in("finance")
    page = client.get(f"/c/acme/runs/{run.pk}/", {"round": "0"}).content.decode()
    assert "partial: round 0" in page
    assert [row[:2] for row in _cells(page)] == [["alpha", "120"], ["beta", "80"]]
    assert [row[3] for row in _cells(page)] == [f"{updates[s].payload_id[:12]}…" for s in ("alpha", "beta")]
    assert re.search(r'data-testid="round-missing">gamma<', page)
    assert run.global_weights.get(round=0).payload_id[:12] in page
    rows = _csv(client.get(f"/c/acme/runs/{run.pk}/", {"round": "0", "format": "csv"}))
    assert rows[0] == ["Participant", "Status", "Examples", "Uploaded (UTC)", "Content SHA-256"]
    assert [row[:3] + row[4:] for row in rows[1:]] == [
        ["alpha", "uploaded", "120", updates["alpha"].payload_id], ["beta", "uploaded", "80", updates["beta"].payload_id],
        ["gamma", "not uploaded", "", ""]]
    assert rows[1][3] == updates["alpha"].created_at.strftime("%Y-%m-%d %H:%M:%S")
    nobody = client.get(f"/c/acme/runs/{run.pk}/", {"round": "1"}).content.decode()
    assert "No update in this round yet." in nobody and re.search(r'round-missing">alpha, beta, gamma<', nobody)
    for missing in ("2", "x", "-1", "0.5", ""):
        assert client.get(f"/c/acme/runs/{run.pk}/", {"round": missing}).status_code == 404, missing


def test_a_participant_sees_only_its_own_updates_on_the_training_run_page(signed_in, consortium, participants):
    run = _partial_run(consortium, participants)
    client = signed_in("participant")
    rows = _csv(client.get(f"/c/acme/runs/{run.pk}/", {"format": "csv"}))
    assert rows[1] == ["0", "uploaded", "1 of 1", "120", "alpha: 120", ""]
    assert all("beta" not in cell and "gamma" not in cell for row in rows for cell in row)
    page = client.get(f"/c/acme/runs/{run.pk}/", {"round": "0"}).content.decode()
    assert [row[:2] for row in _cells(page)] == [["alpha", "120"]] and "beta" not in page and "gamma" not in page
    assert "Every participant has sent its update." in page
    rows = _csv(client.get(f"/c/acme/runs/{run.pk}/", {"round": "0", "format": "csv"}))
    assert [row[0] for row in rows[1:]] == ["alpha"]


def test_the_training_run_page_reads_in_a_fixed_number_of_queries(
        signed_in, consortium, participants, django_assert_num_queries):
    client = signed_in("finance")
    small_run = _run_with_uploads(consortium, participants[:1], name="small", rounds=1)
    small = queries(client, f"/c/acme/runs/{small_run.pk}/")
    small_round = queries(client, f"/c/acme/runs/{small_run.pk}/?round=0")
    assert small <= 10 and small_round <= 11
    more = participants + [ParticipantFactory(consortium=consortium, slug=f"plant-{i}") for i in range(3)]
    large_run = _run_with_uploads(consortium, more, name="large", rounds=4)
    with django_assert_num_queries(small):
        page = client.get(f"/c/acme/runs/{large_run.pk}/").content.decode()
    assert "6 of 6" in page
    with django_assert_num_queries(small_round):
        page = client.get(f"/c/acme/runs/{large_run.pk}/?round=3").content.decode()
    assert len(_cells(page)) == 6


@pytest.mark.parametrize("path", ["/c/acme/runs/", "/c/acme/runs/{run}/", "/c/acme/valuations/",
                                  "/c/acme/valuations/{vrun}/", "/c/acme/valuations/{vrun}/progress"])
def test_pages_send_visitors_to_sign_in_and_hide_from_other_consortia(path, valued, outsider):
    url = path.format(run=valued.training_run_id, vrun=valued.pk)
    response = Client().get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert outsider.get(url).status_code == 404
    if "{" in path:  # an object of acme under the outsider's own consortium's address
        assert outsider.get(url.replace("/c/acme/", "/c/other/")).status_code == 404


@pytest.mark.parametrize("role", ["finance", "governance", "auditor", "participant"])
def test_every_role_of_the_consortium_reads_the_valuation_pages(role, signed_in, valued):
    client = signed_in(role)
    for url in ("/c/acme/runs/", f"/c/acme/runs/{valued.training_run_id}/", "/c/acme/valuations/",
                f"/c/acme/valuations/{valued.pk}/"):
        assert client.get(url).status_code == 200, url
    assert client.get(f"/c/acme/valuations/{valued.pk}/progress").status_code == 286


def test_a_run_of_another_consortium_is_404_under_this_consortiums_address(signed_in, consortium, outsider):
    other = ConsortiumFactory(slug="third")
    foreign = _run_with_uploads(other, [ParticipantFactory(consortium=other)], name="theirs", rounds=1)
    assert signed_in("finance").get(f"/c/acme/runs/{foreign.pk}/").status_code == 404
    assert signed_in("finance").get("/c/acme/runs/not-a-uuid/").status_code == 404


# -- valuation runs: list, filters, start form -----------------------------------------


def test_it_lists_valuation_runs_with_status_badges_filters_and_csv(signed_in, valued, consortium):
    queued = ValuationRun.objects.create(
        consortium=consortium, training_run=valued.training_run, rounds=[0], method="permutation", budget=500,
        seed=77, metric="auc", validation_set=valued.validation_set, chunk_budget=100, input_digest="d" * 64,
        engine_version="1", progress_done=125, progress_total=500)
    client = signed_in("auditor")
    page = client.get("/c/acme/valuations/").content.decode()
    assert '<span class="badge succeeded">succeeded</span>' in page and '<span class="badge queued">queued</span>' in page
    assert "25 %" in page and "100 %" in page
    assert "Start a valuation" not in page  # auditors read only
    filtered = client.get("/c/acme/valuations/", {"status": "queued"}).content.decode()
    assert str(queued.pk)[:8] in filtered and str(valued.pk)[:8] not in filtered
    by_method = client.get("/c/acme/valuations/", {"method": "exact", "training_run": valued.training_run_id})
    assert str(valued.pk)[:8] in by_method.content.decode() and str(queued.pk)[:8] not in by_method.content.decode()
    rows = _csv(client.get("/c/acme/valuations/", {"status": "queued", "format": "csv"}))
    assert rows[0] == ["Run", "Training run", "Method", "Status", "Progress (%)", "Requested by", "Requested (UTC)",
                       "Seed"]
    assert rows[1][2:5] == ["permutation", "queued", "25"] and rows[1][7] == "77" and len(rows) == 2


def test_a_bad_filter_is_shown_next_to_its_field_and_the_list_stays_whole(signed_in, valued):
    response = signed_in("finance").get("/c/acme/valuations/", {"status": "lost"})
    page = response.content.decode()
    assert response.status_code == 200 and "Select a valid choice" in page and str(valued.pk)[:8] in page


def test_the_valuation_list_reads_in_a_fixed_number_of_queries(
        signed_in, valued, consortium, participants, django_assert_num_queries, django_capture_on_commit_callbacks):
    client = signed_in("finance")
    small = queries(client, "/c/acme/valuations/")
    assert small <= 9
    for seed in range(4, 7):
        with django_capture_on_commit_callbacks(execute=True):
            valued_run(consortium, participants, seed=seed)
    with django_assert_num_queries(small):
        page = client.get("/c/acme/valuations/").content.decode()
    assert page.count('<span class="badge succeeded">') == 4


def _start(client, run, **fields):
    return client.post("/c/acme/valuations/", {"training_run": str(run.pk), "method": "exact", **fields})


@pytest.mark.parametrize("role", ["finance", "governance"])
def test_finance_and_governance_start_a_valuation_from_the_form(
        role, signed_in, valued, django_capture_on_commit_callbacks):
    client = signed_in(role)
    assert "Start a valuation" in client.get("/c/acme/valuations/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = _start(client, valued.training_run, seed="42", metric="auc")
    run = ValuationRun.objects.exclude(pk=valued.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/c/acme/valuations/{run.pk}/"
    assert (run.method, run.seed, run.metric, run.status) == ("exact", 42, "auc", "succeeded")
    page = client.get(response["Location"]).content.decode()
    assert "requested (exact, seed 42)" in page and '<span class="badge succeeded"' in page


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"budget": "10"}, "budget", "computes its values exactly"),
    ({"method": "permutation", "budget": "10", "rounds": "0, 7"}, "rounds", "round 7 does not exist"),
    ({"rounds": "0, x"}, "rounds", "is not a round number"),
    ({"tolerance": "2", "method": "permutation"}, "tolerance", "between 0 and 1"),
    ({"method": "guess"}, "method", "Select a valid choice"),
])
def test_a_refused_start_shows_the_error_next_to_its_field_keeps_the_input_and_writes_nothing(
        fields, field, message, signed_in, valued):
    response = _start(signed_in("finance"), valued.training_run, seed="9", **fields)
    page = response.content.decode()
    assert response.status_code == 400
    errors = re.search(rf'<ul class="errorlist" id="id_{field}-errors"[^>]*>(.*?)</ul>', page, re.S)
    assert errors and message in errors.group(1)
    assert 'name="seed" value="9"' in page
    for name, value in fields.items():
        if name != "method":
            assert f'name="{name}" value="{value}"' in page
    assert ValuationRun.objects.count() == 1


def test_a_training_run_of_another_consortium_cannot_be_chosen(signed_in, valued, consortium):
    other = ConsortiumFactory(slug="third")
    foreign = _run_with_uploads(other, [ParticipantFactory(consortium=other)], name="theirs", rounds=1)
    response = _start(signed_in("finance"), foreign)
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not ValuationRun.objects.filter(training_run=foreign).exists()


@pytest.mark.parametrize("role", ["auditor", "participant"])
def test_roles_without_the_capability_cannot_start_a_valuation(role, signed_in, valued):
    assert _start(signed_in(role), valued.training_run).status_code == 403
    assert ValuationRun.objects.count() == 1


def test_starting_a_valuation_is_refused_to_visitors_and_other_consortia(valued, outsider):
    assert _start(Client(), valued.training_run).status_code == 302
    assert _start(outsider, valued.training_run).status_code == 404
    assert ValuationRun.objects.count() == 1


# -- a valuation run: live progress and results ----------------------------------------


def _chart(page: str, chart_id: str) -> dict:
    block = re.search(rf'<script id="{chart_id}-config" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(block.group(1))


def test_a_finished_run_shows_its_results_table_and_charts_and_stops_polling(signed_in, valued):
    client = signed_in("finance")
    page = client.get(f"/c/acme/valuations/{valued.pk}/").content.decode()
    assert "hx-trigger" not in page
    assert valued.input_digest in page and f"<code>{valued.seed}</code>" in page
    assert "(as computed: exact in 2 rounds)" in page and "<dt>Rounds</dt><dd>0, 1 <span" in page
    scores = {s.participant.slug: s for s in valued.scores.select_related("participant")}
    table = re.search(r'<table data-testid="results-table">(.*?)</table>', page, re.S).group(1)
    for slug, score in scores.items():
        assert re.search(rf'<td class="num">{score.rank}</td><th scope="row">{slug}</th>\s*'
                         rf'<td class="num">{format(score.value, ".6g")}</td>', table)
        assert f"[{format(score.ci_low, '.6g')}, {format(score.ci_high, '.6g')}]" in table
    values = _chart(page, "values-chart")
    labels = values["data"]["labels"]
    assert sorted(labels) == sorted(scores)
    assert values["data"]["datasets"][0]["data"] == [scores[slug].value for slug in labels]
    assert values["data"]["datasets"][1]["data"] == [[scores[s].ci_low, scores[s].ci_high] for s in labels]
    by_rank = sorted(scores, key=lambda slug: (scores[slug].rank, slug))
    rounds = _chart(page, "rounds-chart")  # rounds along x, each participant's part stacked
    assert rounds["data"]["labels"] == ["round 0", "round 1"]
    assert [d["label"] for d in rounds["data"]["datasets"]] == by_rank
    for dataset in rounds["data"]["datasets"]:
        assert dataset["data"] == [scores[dataset["label"]].per_round[t] for t in ("0", "1")]
    totals = _csv(client.get(f"/c/acme/valuations/{valued.pk}/", {"format": "csv", "list": "rounds"}))
    assert totals[0] == ["Round", *by_rank, "Total"] and [row[0] for row in totals[1:]] == ["round 0", "round 1"]
    for row, t in zip(totals[1:], ("0", "1"), strict=True):
        assert row[1:-1] == [repr(scores[slug].per_round[t]) for slug in by_rank]
        assert float(row[-1]) == pytest.approx(sum(score.per_round[t] for score in scores.values()))
    assert f"/api/v1/valuation-runs/{valued.pk}/results.csv" in page
    part = client.get(f"/c/acme/valuations/{valued.pk}/progress")
    assert part.status_code == 286 and "hx-trigger" not in part.content.decode()
    assert 'data-testid="results-table"' in part.content.decode()


def test_a_queued_run_polls_its_progress_every_two_seconds(signed_in, valued, consortium, participants,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        queued = valued_run(consortium, participants, seed=8)
    client = signed_in("finance")
    page = client.get(f"/c/acme/valuations/{queued.pk}/").content.decode()
    assert f'hx-get="/c/acme/valuations/{queued.pk}/progress" hx-trigger="every 2s"' in page
    assert "Waiting for a worker" in page and '<span class="badge queued"' in page
    ValuationRun.objects.filter(pk=queued.pk).update(status="running", progress_done=30, progress_total=120)
    for index in range(2):
        ValuationChunk.objects.create(valuation_run=queued, round=0, index=index, kind="enumerate", method="exact",
                                      seed=1, done=index == 0)
    page = client.get(f"/c/acme/valuations/{queued.pk}/").content.decode()
    assert "30 of 120 coalition evaluations (25 %); 1 of 2 chunks done." in page
    part = client.get(f"/c/acme/valuations/{queued.pk}/progress")
    assert part.status_code == 200 and 'hx-trigger="every 2s"' in part.content.decode()
    assert "<html" not in part.content.decode()


def test_a_failed_run_shows_its_error(signed_in, consortium, participants, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        run = valued_run(consortium, participants, seed=8)
    valuation_run_fail(valuation_run_id=run.pk, message="chunk 3 ran out of memory")
    client = signed_in("governance")
    page = client.get(f"/c/acme/valuations/{run.pk}/").content.decode()
    assert '<span class="badge failed"' in page and "chunk 3 ran out of memory" in page and "hx-trigger" not in page
    assert client.get(f"/c/acme/valuations/{run.pk}/progress").status_code == 286


@pytest.mark.parametrize("transparency", [Transparency.OWN, Transparency.RANKS, Transparency.ALL])
def test_a_participant_sees_exactly_what_the_api_shows_it(transparency, signed_in, valued, consortium, member):
    consortium.transparency = transparency
    consortium.save()
    user = member("participant")
    client = Client()
    client.force_login(user)
    api = client.get(f"/api/v1/valuation-runs/{valued.pk}/").json()["scores"]
    page = client.get(f"/c/acme/valuations/{valued.pk}/").content.decode()
    table = re.search(r'<table data-testid="results-table">(.*?)</table>', page, re.S).group(1)
    assert re.findall(r'<th scope="row">([\w-]+)</th>', table) == [row["participant"] for row in api]
    assert table.count("not published") == sum("value" not in row for row in api)
    with_figures = [row for row in api if "value" in row]
    assert _chart(page, "values-chart")["data"]["labels"] == [row["participant"] for row in with_figures]
    rounds = _chart(page, "rounds-chart")  # the rounds of the rows whose figures the API shows
    assert [d["label"] for d in rounds["data"]["datasets"]] == [row["participant"] for row in with_figures]
    totals = _csv(client.get(f"/c/acme/valuations/{valued.pk}/", {"format": "csv", "list": "rounds"}))
    for row, t in zip(totals[1:], ("0", "1"), strict=True):
        assert float(row[-1]) == pytest.approx(sum(api_row["per_round"][t] for api_row in with_figures))


def test_the_run_page_reads_in_a_fixed_number_of_queries(
        signed_in, valued, consortium, participants, django_assert_num_queries, django_capture_on_commit_callbacks):
    client = signed_in("finance")
    small = queries(client, f"/c/acme/valuations/{valued.pk}/")
    small_part = queries(client, f"/c/acme/valuations/{valued.pk}/progress")
    assert small <= 11 and small_part <= 10
    more = participants + [ParticipantFactory(consortium=consortium, slug=f"plant-{i}") for i in range(4)]
    with django_capture_on_commit_callbacks(execute=True):
        large = valued_run(consortium, more, seed=5, rounds=3)
    cache.clear()  # the worst case again: what the finished run prepared is gone
    with django_assert_num_queries(small):
        page = client.get(f"/c/acme/valuations/{large.pk}/").content.decode()
    assert "plant-3" in page
    cache.clear()
    with django_assert_num_queries(small_part):
        client.get(f"/c/acme/valuations/{large.pk}/progress")
    with django_assert_num_queries(small_part - 2):  # the per-round table is in the cache now
        client.get(f"/c/acme/valuations/{large.pk}/progress")


def test_a_participant_is_not_told_who_requested_a_run(member, valued):
    client = Client()
    client.force_login(member("participant"))
    listing = client.get("/c/acme/valuations/").content.decode()
    page = client.get(f"/c/acme/valuations/{valued.pk}/").content.decode()
    assert "Requested by" not in listing and "API key" not in listing and "API key" not in page
    assert "Start a valuation" not in listing
    rows = _csv(client.get("/c/acme/valuations/", {"format": "csv"}))
    assert "Requested by" not in rows[0] and len(rows) == 2


def _scored_run(valued, participants, rounds: int) -> ValuationRun:
    """A succeeded run of ``valued``'s training run with made-up scores of ``participants``
    (ranked in their order, each value spread evenly over ``rounds`` rounds)."""
    run = ValuationRun.objects.create(
        consortium=valued.consortium, training_run=valued.training_run, rounds=list(range(rounds)), method="tmc",
        budget=1000, seed=1, metric="auc", validation_set=valued.validation_set, chunk_budget=100,
        input_digest="e" * 64, engine_version="1", status="succeeded")
    n = len(participants)
    ParticipantScore.objects.bulk_create(
        ParticipantScore(valuation_run=run, participant=p, value=(n - i) / 8, stderr=0.01, ci_low=(n - i) / 8 - 0.02,
                         ci_high=(n - i) / 8 + 0.02, share=None, rank=i + 1,
                         per_round={str(t): (n - i) / 8 / rounds for t in range(rounds)})
        for i, p in enumerate(participants))
    return run


def test_a_run_of_many_participants_and_rounds_shows_a_page_of_them_and_sums_its_rounds(
        signed_in, valued, consortium, participants, django_assert_num_queries):
    client = signed_in("finance")
    small = queries(client, f"/c/acme/valuations/{valued.pk}/")
    more = [ParticipantFactory(consortium=consortium, slug=f"plant-{i:03}") for i in range(117)]
    run = _scored_run(valued, [*participants, *more], rounds=40)  # 120 participants x 40 rounds
    with django_assert_num_queries(small):
        page = client.get(f"/c/acme/valuations/{run.pk}/").content.decode()
    table = re.search(r'<table data-testid="results-table">(.*?)</table>', page, re.S).group(1)
    assert len(re.findall(r'<th scope="row">', table)) == 50 and "Page 1 of 3 · 120 participants in all" in page
    assert "<dt>Rounds</dt><dd>0–39 <span class=\"muted\">(40 in all)</span>" in page
    assert len(_chart(page, "values-chart")["data"]["labels"]) == 50
    rounds = _chart(page, "rounds-chart")
    assert len(rounds["data"]["labels"]) == 40
    assert [d["label"] for d in rounds["data"]["datasets"]] == ["alpha", "beta", "gamma", "plant-000", "plant-001",
                                                                  "All others"]
    others = sum(120 - i for i in range(5, 120)) / 8 / 40
    assert rounds["data"]["datasets"][-1]["data"][0] == pytest.approx(others)
    last = client.get(f"/c/acme/valuations/{run.pk}/", {"page": "3"}).content.decode()
    table = re.search(r'<table data-testid="results-table">(.*?)</table>', last, re.S).group(1)
    assert len(re.findall(r'<th scope="row">', table)) == 20 and '<th scope="row">plant-116</th>' in table
    assert 'href="?page=2" rel="prev"' in last
    totals = _csv(client.get(f"/c/acme/valuations/{run.pk}/", {"format": "csv", "list": "rounds"}))
    assert len(totals) == 41 and float(totals[1][-1]) == pytest.approx(sum(range(1, 121)) / 8 / 40)
    assert float(totals[1][-2]) == pytest.approx(others)


def test_a_finished_run_prepares_its_per_round_table_for_staff(signed_in, consortium, participants,
                                                               django_capture_on_commit_callbacks):
    """The finishing step announces the run; the page's per-round table for staff is kept
    before anyone asks: the first view sums nothing, and shows what a fresh sum gives."""
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        run = _run_with_uploads(consortium, participants, name="prepared")
    with django_capture_on_commit_callbacks(execute=True):
        valuation = valuation_run_start(actor=_keys(consortium), training_run=run, method="exact", seed=3)
    client = signed_in("finance")
    url = f"/c/{consortium.slug}/valuations/{valuation.pk}/?format=csv&list=rounds"
    with CaptureQueriesContext(connection) as captured:
        prepared = client.get(url).content
    assert not [q for q in captured if "json_each" in q["sql"] or "jsonb_each_text" in q["sql"]]
    cache.clear()
    assert client.get(url).content == prepared and b"Total" in prepared
