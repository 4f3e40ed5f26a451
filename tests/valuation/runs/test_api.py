"""The valuation-run API in the embedded mode (tasks in-process): start, follow, cancel,
results as JSON and CSV, every bad request a clear 4xx that creates nothing, and the
consortium's transparency setting applied to what a participant sees."""

from __future__ import annotations

import csv
import io
import math
from unittest import mock

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from consortium.access import Principal
from consortium.models import AuditEvent
from core.spreadsheet import spreadsheet_text
from ledger.models import LedgerEntry
from tests.factories import ApiKeyFactory, ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.valuation.conftest import LOGISTIC_SPEC, logistic_arrays, npz_bytes
from valuation.engine import MultiRoundGame, estimate
from valuation.models import ValuationRun
from valuation.services import global_weights_upload, training_run_create, valuation_run_start
from valuation.services.valuation_work import _inputs, round_game
from valuation.tasks import valuation_run_plan_task

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/valuation-runs/"


def _start(client, run, **fields):
    return client.post(URL, {"training_run": str(run.id), **fields}, format="json")


def test_an_exact_run_records_the_engines_values_and_one_ledger_entry(valuer, uploaded_run):
    started = _start(valuer, uploaded_run, method="exact", seed=5)
    assert started.status_code == 202, started.content
    assert started.json()["status"] == "queued"
    body = valuer.get(f"{URL}{started.json()['id']}/").json()
    assert body["status"] == "succeeded" and body["error_message"] == ""
    assert body["progress"]["done"] == body["progress"]["total"] == 3 * 2**6
    run = ValuationRun.objects.get(pk=body["id"])
    game = MultiRoundGame(rounds=[round_game(run, inputs) for inputs in _inputs(run).values()])
    reference = estimate(game, method="exact")
    by_slug = {row["participant"]: row for row in body["scores"]}
    for slug, value in zip(game.players, reference.values):
        assert by_slug[slug]["value"] == pytest.approx(value, abs=1e-12)
        assert sum(by_slug[slug]["per_round"].values()) == pytest.approx(value, abs=1e-12)
    entries = LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=body["id"])
    assert entries.count() == 1 and body["ledger_entry"] == entries.get().seq
    recorded = entries.get().body
    assert recorded["input_digest"] == body["input_digest"] and recorded["seed"] == "5"
    assert {row[0] for row in recorded["scores"]} == set(by_slug)


def test_a_sampled_run_reports_intervals_around_its_values_and_honours_its_budget(valuer, uploaded_run):
    body = valuer.get(f"{URL}{_start(valuer, uploaded_run, method='stratified', budget=120, seed=1).json()['id']}/").json()
    assert body["status"] == "succeeded"
    assert body["evaluations"] <= 120
    total = sum(row["value"] for row in body["scores"])
    for row in body["scores"]:
        assert row["stderr"] > 0
        assert row["ci_low"] < row["value"] < row["ci_high"]
        assert row["ci_high"] - row["value"] == pytest.approx(1.96 * row["stderr"], rel=1e-3)
        assert row["share"] == (pytest.approx(row["value"] / total) if total > 0 else None)


def test_the_same_request_and_seed_give_identical_scores_and_digest(valuer, uploaded_run):
    ids = [_start(valuer, uploaded_run, method="permutation", budget=100, seed=11).json()["id"] for _ in range(2)]
    first, second = (valuer.get(f"{URL}{i}/").json() for i in ids)
    assert first["input_digest"] == second["input_digest"]
    assert first["scores"] == second["scores"]
    other = valuer.get(f"{URL}{_start(valuer, uploaded_run, method='permutation', budget=100, seed=12).json()['id']}/")
    assert other.json()["input_digest"] == first["input_digest"]
    assert other.json()["scores"] != first["scores"]


def test_a_repeated_idempotency_key_is_one_run(valuer, uploaded_run):
    headers = {"HTTP_IDEMPOTENCY_KEY": "value-once"}
    body = {"training_run": str(uploaded_run.id), "method": "exact"}
    first = valuer.post(URL, body, format="json", **headers)
    again = valuer.post(URL, body, format="json", **headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert ValuationRun.objects.count() == 1
    changed = valuer.post(URL, {**body, "seed": 4}, format="json", **headers)
    assert changed.status_code == 409 and ValuationRun.objects.count() == 1


def _no_validation_run(consortium, ingest_key):
    run = training_run_create(actor=Principal(api_key=ingest_key), consortium=consortium, name="no-validation",
                              model_family="logistic", task="binary", metric="neg_log_loss",
                              parameter_spec=LOGISTIC_SPEC)
    global_weights_upload(actor=Principal(api_key=ingest_key), training_run=run, round=0,
                          data=npz_bytes(**logistic_arrays()))
    return run


BAD_REQUESTS = [
    ({"method": "magic"}, "method", "Unknown method 'magic'"),
    ({"method": "exact", "metric": "neg_rmse"}, "metric", "Unknown metric 'neg_rmse' for a binary task"),
    ({"method": "exact", "metric": "no-such"}, "metric", "Unknown metric"),
    ({"method": "stratified", "budget": 5}, "budget", "below the minimum"),
    ({"method": "stratified", "budget": 10**9}, "budget", "ceiling"),
    ({"method": "stratified", "budget": 500, "tolerance": 0.01}, "budget", "not both"),
    ({"method": "stratified"}, "budget", "give a budget or a tolerance"),
    ({"method": "exact", "budget": 500}, "budget", "give neither"),
    ({"method": "stratified", "tolerance": 0}, "tolerance", "between 0 and 1"),
    ({"method": "stratified", "tolerance": 1.5}, "tolerance", "between 0 and 1"),
    ({"method": "exact", "rounds": [0, 7]}, "rounds", "round 7 does not exist"),
    ({"method": "exact", "rounds": []}, "rounds", ""),
    ({"method": "exact", "rounds": [1, 1]}, "rounds", "distinct"),
    ({"method": "exact", "seed": -1}, "seed", ""),
    ({"method": "exact", "budget": 0}, "budget", ""),
    ({"method": "exact", "training_run": "not-a-uuid"}, "training_run", ""),
]


@pytest.mark.parametrize(("fields", "field", "message"), BAD_REQUESTS, ids=[str(f) for f, _, _ in BAD_REQUESTS])
def test_a_bad_request_is_a_400_naming_the_field_and_creates_nothing(valuer, uploaded_run, fields, field, message):
    response = valuer.post(URL, {"training_run": str(uploaded_run.id), **fields}, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error.get("field") == field or field in str(error), error
    assert message in str(error)
    assert ValuationRun.objects.count() == 0


def test_a_round_without_updates_and_a_run_without_validation_set_are_400(valuer, consortium, ingest_key):
    run = _no_validation_run(consortium, ingest_key)
    response = _start(valuer, run, method="exact", rounds=[0])
    assert response.status_code == 400 and "round 0 has no participant updates" in str(response.json())
    response = _start(valuer, run, method="exact")
    assert response.status_code == 400 and "no round with global weights and updates" in str(response.json())
    assert ValuationRun.objects.count() == 0


def test_no_active_validation_set_is_a_400(valuer, training_run, ingest_key, valued_participants):
    from valuation.services import update_upload

    actor = Principal(api_key=ingest_key)
    global_weights_upload(actor=actor, training_run=training_run, round=0, data=npz_bytes(**logistic_arrays()))
    update_upload(actor=actor, training_run=training_run, round=0, participant=valued_participants[0],
                  data=npz_bytes(**logistic_arrays(1)), num_examples=5)
    response = _start(valuer, training_run, method="exact")
    assert response.status_code == 400 and "no active validation set" in str(response.json())
    assert ValuationRun.objects.count() == 0


def test_another_consortiums_training_run_is_404_and_a_key_without_the_scope_403(uploaded_run):
    foreign = APIClient()
    foreign.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory(consortium=ConsortiumFactory(), scopes=['valuation']).raw_key}")
    assert _start(foreign, uploaded_run, method="exact").status_code == 404
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory(consortium=uploaded_run.consortium, scopes=['read']).raw_key}")
    assert _start(reader, uploaded_run, method="exact").status_code == 403
    assert ValuationRun.objects.count() == 0


def test_results_wait_for_success_and_a_cancelled_run_records_nothing(consortium, uploaded_run, valuer, valuation_key):
    with mock.patch("valuation.services.valuation_runs.valuation_run_enqueue"):
        run = valuation_run_start(actor=Principal(api_key=valuation_key), training_run=uploaded_run, method="exact")
    assert valuer.get(f"{URL}{run.id}/results/").status_code == 409
    cancelled = valuer.post(f"{URL}{run.id}/cancel/", format="json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert valuer.post(f"{URL}{run.id}/cancel/", format="json").status_code == 409
    valuation_run_plan_task.delay(str(run.id))  # the task arrives after the cancel: it must do nothing
    run.refresh_from_db()
    assert run.status == "cancelled" and not run.scores.exists()
    assert not LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.id)).exists()


def test_the_csv_has_one_row_per_participant_and_cannot_run_formulas(valuer, consortium, uploaded_run, ingest_key):
    run_id = _start(valuer, uploaded_run, method="exact").json()["id"]
    json_rows = valuer.get(f"{URL}{run_id}/results/").json()["scores"]
    response = valuer.get(f"{URL}{run_id}/results.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["participant"] for r in rows] == [r["participant"] for r in json_rows]
    for row, expected in zip(rows, json_rows):
        assert float(row["value"]) == expected["value"]
        assert math.isclose(sum(float(row[f"round_{t}"]) for t in (0, 1, 2)), expected["value"], abs_tol=1e-12)
    assert spreadsheet_text("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert spreadsheet_text("-2+3") == "'-2+3" and spreadsheet_text("plant-1") == "plant-1"


@pytest.mark.parametrize("transparency", ["own", "ranks", "all"])
def test_a_participant_sees_other_participants_figures_as_the_consortium_allows(consortium, uploaded_run, valuer,
                                                                                 valued_participants, transparency):
    consortium.transparency = transparency
    consortium.save()
    run_id = _start(valuer, uploaded_run, method="exact").json()["id"]
    alpha = valued_participants[0]
    user = MembershipFactory(consortium=consortium, role="participant", participant=alpha).user
    client = APIClient()
    client.force_login(user)
    for path in (f"{URL}{run_id}/", f"{URL}{run_id}/results/"):
        scores = client.get(path).json()["scores"]
        own = [row for row in scores if row["participant"] == alpha.slug]
        assert len(own) == 1 and "value" in own[0]
        others = [row for row in scores if row["participant"] != alpha.slug]
        if transparency == "own":
            assert others == []
        elif transparency == "ranks":
            assert len(others) == len(valued_participants) - 1
            assert all(set(row) == {"participant", "rank"} for row in others)
        else:
            assert all("value" in row for row in others) and len(others) == len(valued_participants) - 1
    csv_rows = list(csv.DictReader(io.StringIO(client.get(f"{URL}{run_id}/results.csv").content.decode())))
    if transparency != "all":
        assert [r["value"] for r in csv_rows if r["participant"] != alpha.slug] in ([], [""] * (len(csv_rows) - 1))


def test_the_list_filters_by_status_and_training_run_and_refuses_an_unknown_status(valuer, uploaded_run):
    run_id = _start(valuer, uploaded_run, method="exact").json()["id"]
    assert [r["id"] for r in valuer.get(URL, {"status": "succeeded"}).json()["results"]] == [run_id]
    assert valuer.get(URL, {"status": "queued"}).json()["results"] == []
    assert valuer.get(URL, {"training_run": str(uploaded_run.id)}).json()["count"] == 1
    assert valuer.get(URL, {"status": "done"}).status_code == 400
    assert valuer.get(URL, {"training_run": "nope"}).status_code == 400


def test_a_participant_absent_from_a_round_gets_nothing_there(consortium, valuer, training_run, ingest_key,
                                                              valued_participants):
    from tests.valuation.runs.conftest import upload_rounds

    upload_rounds(actor=Principal(api_key=ingest_key), training_run=training_run, participants=valued_participants,
                  rounds=1)
    late = ParticipantFactory(consortium=consortium, slug="late")
    from valuation.services import update_upload

    global_weights_upload(actor=Principal(api_key=ingest_key), training_run=training_run, round=1,
                          data=npz_bytes(**logistic_arrays(3)))
    for participant in [valued_participants[0], late]:
        update_upload(actor=Principal(api_key=ingest_key), training_run=training_run, round=1,
                      participant=participant, data=npz_bytes(**logistic_arrays(np.random.default_rng(1).integers(9))),
                      num_examples=30)
    scores = {r["participant"]: r for r in valuer.get(f"{URL}{_start(valuer, training_run, method='exact').json()['id']}/").json()["scores"]}
    assert set(scores["late"]["per_round"]) == {"1"}
    assert set(scores[valued_participants[1].slug]["per_round"]) == {"0"}
    assert set(scores[valued_participants[0].slug]["per_round"]) == {"0", "1"}


def test_the_valuation_record_is_in_the_ledger_for_staff_and_hidden_from_participant_users(
    consortium, uploaded_run, valuer, valued_participants
):
    consortium.transparency = "own"
    consortium.save()
    seq = valuer.get(f"{URL}{_start(valuer, uploaded_run, method='exact').json()['id']}/").json()["ledger_entry"]
    path = f"/api/v1/consortia/{consortium.slug}/ledger/entries/{seq}/"
    staff, participant = APIClient(), APIClient()
    staff.force_login(MembershipFactory(consortium=consortium, role="finance").user)
    participant.force_login(
        MembershipFactory(consortium=consortium, role="participant", participant=valued_participants[0]).user
    )
    assert staff.get(path).status_code == 200
    assert participant.get(path).status_code == 404


def test_a_run_requested_while_the_broker_is_unreachable_stays_queued_until_valuation_resend(
    valuer, uploaded_run, caplog
):
    with mock.patch.object(valuation_run_plan_task, "delay", side_effect=OperationalError("Connection refused")):
        started = _start(valuer, uploaded_run, method="exact", seed=2)
    assert started.status_code == 202, started.content
    run = ValuationRun.objects.get(pk=started.json()["id"])
    assert run.status == "queued" and valuer.get(f"{URL}{run.id}/").json()["status"] == "queued"
    assert "stays queued until `manage.py valuation_resend`" in caplog.text

    call_command("valuation_resend", "--idle", "0", stdout=io.StringIO())
    assert valuer.get(f"{URL}{run.id}/").json()["status"] == "succeeded"
    assert LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.id)).count() == 1


def test_valuation_resend_reports_an_unreachable_broker_and_records_no_resend(uploaded_run, valuation_key):
    with mock.patch("valuation.services.valuation_runs.valuation_run_enqueue"):
        run = valuation_run_start(actor=Principal(api_key=valuation_key), training_run=uploaded_run, method="exact")
    with (mock.patch.object(valuation_run_plan_task, "delay", side_effect=OperationalError("Connection refused")),
          pytest.raises(CommandError, match=r"could not reach the broker .*resent before that: 0 of 1 run")):
        call_command("valuation_resend", "--idle", "0", stdout=io.StringIO())
    assert not AuditEvent.objects.filter(action="valuation_run.resent").exists()
    run.refresh_from_db()
    assert run.status == "queued"


def test_listing_runs_takes_the_same_queries_for_one_run_as_for_five(valuer, uploaded_run):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def listing_queries() -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as queries:
            body = valuer.get(URL).json()
        return len(queries), body

    _start(valuer, uploaded_run, method="exact", seed=1)
    one, _ = listing_queries()
    for seed in range(2, 6):
        _start(valuer, uploaded_run, method="stratified", budget=60, seed=seed)
    five, body = listing_queries()
    assert five == one
    assert len(body["results"]) == 5
    assert all(run["progress"]["chunks_done"] == run["progress"]["chunks_total"] > 0 for run in body["results"])
    assert all(len(run["scores"]) == 6 for run in body["results"])
