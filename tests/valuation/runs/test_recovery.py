"""Re-sending a stuck run's planning step finishes it (also through ``valuation_resend``);
the hard time limit fails the run."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from celery.exceptions import TimeLimitExceeded
from django.core.management import CommandError, call_command
from django.utils import timezone

from consortium.models import AuditEvent
from ledger.models import LedgerEntry
from tests.valuation.runs.test_work import _requested
from valuation.models import ValuationRun
from valuation.services.valuation_work import valuation_chunk_run, valuation_run_plan
from valuation.tasks import valuation_chunk_task, valuation_run_plan_task

pytestmark = pytest.mark.django_db(transaction=True)


def test_planning_sent_again_after_the_last_chunk_finishes_the_run_once(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    for chunk_id in valuation_run_plan(valuation_run_id=run.pk):
        valuation_chunk_run(chunk_id=chunk_id)  # every chunk done, the finishing step lost
    run.refresh_from_db()
    assert run.status == "running"
    valuation_run_plan_task.delay(str(run.pk))
    valuation_run_plan_task.delay(str(run.pk))
    run.refresh_from_db()
    assert run.status == "succeeded"
    assert LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.pk)).count() == 1


def test_a_chunk_stopped_at_the_hard_time_limit_fails_the_run_with_a_message(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    chunk_id = valuation_run_plan(valuation_run_id=run.pk)[0]
    # What the worker's parent process calls when it kills the child at the hard limit.
    valuation_chunk_task.on_failure(TimeLimitExceeded(3900), "task-id", (str(run.pk), chunk_id), {}, None)
    run.refresh_from_db()
    assert run.status == "failed" and "hard time limit" in run.error_message
    assert not LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.pk)).exists()


def test_other_failures_leave_the_run_to_be_sent_again(uploaded_run, valuation_key):
    run = _requested(uploaded_run, valuation_key, method="exact")
    chunk_id = valuation_run_plan(valuation_run_id=run.pk)[0]
    valuation_chunk_task.on_failure(ConnectionError("broker"), "task-id", (str(run.pk), chunk_id), {}, None)
    run.refresh_from_db()
    assert run.status == "running"


def _resend(*args: str) -> str:
    out = io.StringIO()
    call_command("valuation_resend", *args, stdout=out)
    return out.getvalue()


def test_valuation_resend_finishes_a_run_never_planned_and_one_whose_finish_was_lost(uploaded_run, valuation_key):
    never_planned = _requested(uploaded_run, valuation_key, method="exact")
    finish_lost = _requested(uploaded_run, valuation_key, method="stratified", budget=120, seed=4)
    for chunk_id in valuation_run_plan(valuation_run_id=finish_lost.pk):
        valuation_chunk_run(chunk_id=chunk_id)
    done = _requested(uploaded_run, valuation_key, method="exact")
    _resend("--run", str(done.pk), "--idle", "0")  # finishes it: it was never planned either

    output = _resend("--idle", "0")

    assert f"resent {never_planned.pk} queued" in output and f"resent {finish_lost.pk} running" in output
    assert str(done.pk) not in output and "2 stalled run(s)" in output
    for run in (never_planned, finish_lost, done):
        run.refresh_from_db()
        assert run.status == "succeeded"
        assert LedgerEntry.objects.filter(reference_type="valuation_run", reference_id=str(run.pk)).count() == 1
    assert AuditEvent.objects.filter(action="valuation_run.resent", object_id=str(finish_lost.pk)).count() == 1


def test_valuation_resend_leaves_runs_active_within_the_idle_time_and_sends_nothing_on_a_dry_run(
    uploaded_run, valuation_key
):
    run = _requested(uploaded_run, valuation_key, method="exact")
    assert "0 stalled run(s)" in _resend()  # requested just now: younger than the default 600 s
    ValuationRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))
    output = _resend("--dry-run")
    assert f"would resend {run.pk} queued" in output and "dry run: nothing sent" in output
    run.refresh_from_db()
    assert run.status == "queued"
    assert not AuditEvent.objects.filter(action="valuation_run.resent").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--idle", "-1"], "--idle is a number of seconds"),
    (["--run", "not-a-uuid"], "--run takes valuation run ids"),
])
def test_valuation_resend_refuses_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("valuation_resend", *args)
