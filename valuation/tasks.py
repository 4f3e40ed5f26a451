"""Celery tasks of the valuation app: they take ids and call services.

A valuation run is two kinds of task: ``valuation_run_plan_task`` cuts the run into
chunks and fans them out as a group; every ``valuation_chunk_task`` computes one chunk,
and the one that completes the last chunk finishes the run (a hop through the broker
less). ``valuation_run_finish_task`` does the finishing step on its own when planning is
sent again for a run whose chunks are all done (its last chunk's worker was lost). Every
step is idempotent (see :mod:`valuation.services.valuation_work`), acknowledged late and
rejected back to the queue when its worker is lost, so a run survives a killed worker.
Transient errors (database, storage) are retried with bounded exponential backoff; any
other error, a chunk that keeps failing or one past its time limit fails the run with
a readable message and no ledger entry.
"""

from __future__ import annotations

import logging
import os
import random

from celery import group, shared_task
from celery.contrib.django.task import DjangoTask
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from valuation.models import ValuationChunk
from valuation.services import payload_verify
from valuation.services.valuation_runs import valuation_run_fail
from valuation.services.valuation_work import valuation_chunk_run, valuation_run_finish, valuation_run_plan

logger = logging.getLogger(__name__)

TRANSIENT = (DatabaseError, OSError)
BACKOFF_MAX_SECONDS = 300


class ValuationTask(DjangoTask):
    """Fails the run at the hard time limit, which ``_guarded`` never sees: the worker kills
    the child, acknowledges the message and calls this in its parent. Other failures are
    left alone (a run whose failure cannot be written stays running, to be re-sent)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        if not args or not isinstance(exc, TimeLimitExceeded):
            return
        try:
            valuation_run_fail(valuation_run_id=args[0], message=(
                f"a task ran past its hard time limit of {self.time_limit} s and was stopped; raise "
                "VALUATION_TASK_TIME_LIMIT or lower VALUATION_CHUNK_BUDGET."))
        except Exception:  # the database may be unreachable too; the run then stays running
            logger.exception("could not mark the valuation run failed", extra={"valuation_run": args[0]})


_VALUATION_TASK = {
    "base": ValuationTask,
    "bind": True,
    # Nothing reads the planning or finishing step's return value (the run's row is the
    # result), and a web process that subscribes to a result waits ~20 s on a broker outage
    # before failing. Failures and revocations are still stored, for operators.
    "ignore_result": True,
    "store_errors_even_if_ignored": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": settings.VALUATION_TASK_MAX_RETRIES,
    "soft_time_limit": settings.VALUATION_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.VALUATION_TASK_TIME_LIMIT,
}


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseError, OSError),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def payload_verify_task(self, sha256: str) -> dict:
    payload = payload_verify(sha256=sha256)
    return {"sha256": payload.sha256, "verified_at": payload.verified_at.isoformat()}


def _guarded(task, run_id: str, what, step):
    """Run ``step()``; retry transient errors with backoff, fail the run on anything else.
    ``what`` names the step in the run's error message (a string, or a function that looks
    it up only when something failed)."""
    try:
        return step()
    except SoftTimeLimitExceeded:
        message = (f"{_label(what)} ran past its time limit of {task.soft_time_limit} s; raise "
                   "VALUATION_TASK_SOFT_TIME_LIMIT or lower VALUATION_CHUNK_BUDGET.")
    except TRANSIENT as exc:
        if not task.request.is_eager and task.request.retries < task.max_retries:
            countdown = min(2 ** (task.request.retries + 1), BACKOFF_MAX_SECONDS) * (0.5 + random.random() / 2)
            raise task.retry(exc=exc, countdown=countdown) from exc
        message = f"{_label(what)} kept failing ({task.request.retries + 1} attempts): {_describe(exc)}"
    except Exception as exc:  # deterministic: retrying would fail the same way
        logger.exception("valuation task failed", extra={"valuation_run": run_id})
        message = f"{_label(what)} failed: {_describe(exc)}"
    valuation_run_fail(valuation_run_id=run_id, message=message)
    return None


def _describe(exc: BaseException) -> str:
    """The error for the run's readers, without server paths: a file by its name only."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{type(exc).__name__}: {exc.strerror}: {os.path.basename(str(exc.filename))}"
    return f"{type(exc).__name__}: {exc}"


def _label(what) -> str:
    try:
        return what() if callable(what) else what
    except Exception:  # the label must never hide the failure it describes
        return "a step"


def _chunk_label(chunk_id: int):
    def label() -> str:
        t, index = ValuationChunk.objects.filter(pk=chunk_id).values_list("round", "index").get()
        return f"round {t}, chunk {index}"

    return label


@shared_task(**_VALUATION_TASK)
def valuation_run_plan_task(self, valuation_run_id: str) -> int:
    pending = _guarded(self, valuation_run_id, "planning", lambda: valuation_run_plan(valuation_run_id=valuation_run_id))
    if pending:
        group(
            valuation_chunk_task.si(valuation_run_id, chunk_id).set(task_id=f"valuation-chunk-{chunk_id}")
            for chunk_id in pending
        ).apply_async()
    elif pending == []:
        # Planned before and every chunk done (or the run ended): the finishing step may be
        # what was lost (a broker restart); it does nothing unless the run is ready.
        valuation_run_finish_task.delay(valuation_run_id)
    return len(pending or [])


# A chunk's outcome (done, or discarded after a cancel) is kept: workers send chunks, never a
# web request, and operators (and the cancel test) read which chunks ran.
@shared_task(**{**_VALUATION_TASK, "ignore_result": False})
def valuation_chunk_task(self, valuation_run_id: str, chunk_id: int) -> bool:
    last = _guarded(self, valuation_run_id, _chunk_label(chunk_id), lambda: valuation_chunk_run(chunk_id=chunk_id))
    if last:
        # A retry of this task finds its chunk done and the run complete, and finishes again.
        _guarded(self, valuation_run_id, "finishing", lambda: valuation_run_finish(valuation_run_id=valuation_run_id))
    return bool(last)


@shared_task(**_VALUATION_TASK)
def valuation_run_finish_task(self, valuation_run_id: str) -> str | None:
    run = _guarded(self, valuation_run_id, "finishing", lambda: valuation_run_finish(valuation_run_id=valuation_run_id))
    return None if run is None else run.status
