"""Re-sending a stuck run's planning step finishes it; the hard time limit fails the run."""

from __future__ import annotations

import pytest
from celery.exceptions import TimeLimitExceeded

from ledger.models import LedgerEntry
from tests.valuation.runs.test_work import _requested
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
