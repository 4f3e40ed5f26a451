"""Valuation runs as users see them: start one, cancel one, record a failure.

``valuation_run_start`` checks the whole request before anything is written (one clear
4xx naming the field, nothing half-created), fixes the rounds, the validation set and the
*input digest* (SHA-256 over a canonical JSON of every input that moves the numbers), and
enqueues the planning task once the transaction commits. The work itself is in
:mod:`valuation.services.valuation_work`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
from dataclasses import dataclass
from functools import partial

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from consortium.access import Principal
from consortium.audit import audit_record
from core.errors import Conflict, InvalidInput
from valuation import engine
from valuation.engine import METHODS, METRICS_BY_TASK
from valuation.engine.estimate import ALIASES, EXACT_WITHOUT_BUDGET_PLAYERS
from valuation.engine.estimators.exact import MAX_EXACT_PLAYERS
from valuation.models import GlobalWeights, ParticipantUpdate, TrainingRun, ValidationSet, ValuationRun

__all__ = ["METHOD_NAMES", "RoundInputs", "round_inputs", "valuation_run_cancel", "valuation_run_fail",
           "valuation_run_enqueue", "valuation_run_resend", "valuation_run_start"]

logger = logging.getLogger(__name__)

METHOD_NAMES = ("auto", *sorted(METHODS), *sorted(ALIASES))
# Deterministic methods: no budget, no tolerance, nothing to sample.
UNSAMPLED = ("exact", "loo")
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class RoundInputs:
    """One round as the workers will value it: its global weights and updates (by slug)."""

    round: int
    global_weights: str  # payload sha256
    updates: tuple[tuple[str, str, int], ...]  # (participant slug, payload sha256, num_examples), by slug

    @property
    def n_players(self) -> int:
        return len(self.updates)

    def as_json(self) -> dict:
        return {"round": self.round, "global_weights": self.global_weights,
                "updates": [list(update) for update in self.updates]}

    @classmethod
    def from_json(cls, document: dict) -> RoundInputs:
        return cls(int(document["round"]), document["global_weights"],
                   tuple((slug, sha, int(count)) for slug, sha, count in document["updates"]))


def round_inputs(*, training_run: TrainingRun, rounds: list[int] | None) -> list[RoundInputs]:
    """The rounds to value (all complete rounds by default); InvalidInput for a round that
    does not exist, has no updates or no global weights."""
    weights = dict(GlobalWeights.objects.filter(training_run=training_run).values_list("round", "payload_id"))
    updates: dict[int, list] = {}
    for t, slug, sha, count in (
        ParticipantUpdate.objects.filter(training_run=training_run)
        .order_by("round", "participant__slug")
        .values_list("round", "participant__slug", "payload_id", "num_examples")
    ):
        updates.setdefault(t, []).append((slug, sha, int(count)))
    if rounds is None:
        rounds = sorted(t for t in updates if t in weights)
        if not rounds:
            raise InvalidInput("The training run has no round with global weights and updates yet.", field="rounds")
    problems = []
    for t in rounds:
        if t not in weights and t not in updates:
            problems.append(f"round {t} does not exist")
        elif t not in updates:
            problems.append(f"round {t} has no participant updates")
        elif t not in weights:
            problems.append(f"round {t} has no global weights")
    if problems:
        raise InvalidInput("; ".join(problems) + ".", field="rounds")
    return [RoundInputs(t, weights[t], tuple(updates[t])) for t in rounds]


def _check_request(*, training_run, method, budget, tolerance, seed, metric, rounds) -> None:
    if method not in METHOD_NAMES:
        raise InvalidInput(f"Unknown method {method!r}; expected one of {', '.join(METHOD_NAMES)}.", field="method")
    allowed = METRICS_BY_TASK[training_run.task]
    if metric not in allowed:
        raise InvalidInput(
            f"Unknown metric {metric!r} for a {training_run.task} task; expected one of {', '.join(allowed)}.",
            field="metric",
        )
    if budget is not None and tolerance is not None:
        raise InvalidInput("Give a budget or a tolerance, not both.", field="budget")
    if method in UNSAMPLED and (budget is not None or tolerance is not None):
        raise InvalidInput(f"Method {method!r} computes its values exactly: give neither budget nor tolerance.",
                           field="budget" if budget is not None else "tolerance")
    if budget is not None and budget > settings.VALUATION_MAX_BUDGET:
        raise InvalidInput(f"budget {budget} is above this deployment's ceiling of {settings.VALUATION_MAX_BUDGET}.",
                           field="budget")
    if tolerance is not None and not (math.isfinite(tolerance) and 0 < tolerance < 1):
        raise InvalidInput("tolerance is a relative standard error between 0 and 1 (exclusive).", field="tolerance")
    if seed is not None and not (0 <= seed <= MAX_SEED):
        raise InvalidInput(f"seed must be between 0 and {MAX_SEED}.", field="seed")
    if rounds is not None and (not rounds or len(set(rounds)) != len(rounds)):
        raise InvalidInput("rounds, when given, is a non-empty list of distinct round numbers.", field="rounds")


def minimum_budget(method: str, n_players: int) -> int:
    """The fewest coalitions a round of ``n_players`` needs under ``method``."""
    resolved = ALIASES.get(method, method)
    return METHODS["stratified" if resolved == "auto" else resolved].minimum_budget(n_players)


def _check_sizes(method: str, budget, tolerance, inputs: list[RoundInputs]) -> None:
    largest = max(r.n_players for r in inputs)
    if method == "exact" and largest > MAX_EXACT_PLAYERS:
        raise InvalidInput(f"exact enumerates 2^n coalitions and stops at {MAX_EXACT_PLAYERS} participants; "
                           f"a round here has {largest}. Use a sampling method with a budget.", field="method")
    needs_one = method not in UNSAMPLED and not (method == "auto" and largest <= EXACT_WITHOUT_BUDGET_PLAYERS)
    if needs_one and budget is None and tolerance is None:
        raise InvalidInput(f"Method {method!r} samples coalitions here: give a budget or a tolerance.", field="budget")
    if budget is not None:
        least = sum(minimum_budget(method, r.n_players) for r in inputs)
        if budget < least:
            raise InvalidInput(f"budget {budget} is below the minimum of {least} for method {method!r} over "
                               f"{len(inputs)} round(s).", field="budget")


def input_digest(*, training_run: TrainingRun, inputs: list[RoundInputs], validation_set: ValidationSet,
                 method: str, budget, tolerance, metric: str, chunk_budget: int) -> str:
    """SHA-256 of every input that moves the numbers (the seed is recorded beside it)."""
    document = {
        "model": {"family": training_run.model_family, "task": training_run.task,
                  "parameter_spec": training_run.parameter_spec},
        "rounds": [r.as_json() for r in inputs],
        "validation_set": validation_set.payload_id,
        "method": {"name": method, "budget": budget, "tolerance": None if tolerance is None else repr(tolerance),
                   "metric": metric, "chunk_budget": chunk_budget},
        "versions": {"engine": engine.__version__, "numpy": np.__version__},
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def valuation_run_start(
    *, actor: Principal, training_run: TrainingRun, method: str = "auto", budget: int | None = None,
    tolerance: float | None = None, seed: int | None = None, metric: str | None = None,
    rounds: list[int] | None = None,
) -> ValuationRun:
    """Check and record a valuation request; its tasks are enqueued when the caller commits."""
    metric = metric or training_run.metric
    _check_request(training_run=training_run, method=method, budget=budget, tolerance=tolerance, seed=seed,
                   metric=metric, rounds=rounds)
    inputs = round_inputs(training_run=training_run, rounds=None if rounds is None else sorted(rounds))
    validation_set = training_run.validation_sets.filter(is_active=True).first()
    if validation_set is None:
        raise InvalidInput("The training run has no active validation set; governance uploads one first.",
                           field="training_run")
    _check_sizes(method, budget, tolerance, inputs)
    seed = secrets.randbelow(2**31) if seed is None else seed
    chunk_budget = settings.VALUATION_CHUNK_BUDGET
    run = ValuationRun.objects.create(
        consortium=training_run.consortium, training_run=training_run, rounds=[r.round for r in inputs],
        method=method, budget=budget, tolerance=tolerance, seed=seed, metric=metric, validation_set=validation_set,
        chunk_budget=chunk_budget, engine_version=engine.__version__, inputs=[r.as_json() for r in inputs],
        input_digest=input_digest(training_run=training_run, inputs=inputs, validation_set=validation_set,
                                  method=method, budget=budget, tolerance=tolerance, metric=metric,
                                  chunk_budget=chunk_budget),
        created_by=actor.stored_user, created_by_key=actor.api_key,
    )
    audit_record(actor=actor, action="valuation_run.started", consortium=training_run.consortium, target=run,
                 data={"training_run": str(training_run.id), "method": method, "budget": budget,
                       "tolerance": tolerance, "seed": seed, "metric": metric, "rounds": run.rounds})
    transaction.on_commit(partial(valuation_run_enqueue, valuation_run_id=run.id))
    return run


def valuation_run_enqueue(*, valuation_run_id) -> bool:
    """Send a requested run's planning step (after its request commits). A broker that
    cannot be reached leaves the run ``queued``: it is recorded and nothing is lost, the
    error is logged, and ``manage.py valuation_resend`` sends it on; the request is still
    answered. False when it could not be sent."""
    from valuation.tasks import valuation_run_plan_task  # tasks import services

    try:
        valuation_run_plan_task.delay(str(valuation_run_id))
    except OperationalError:
        logger.exception("the broker could not be reached: the valuation run stays queued until "
                         "`manage.py valuation_resend` sends it", extra={"valuation_run": str(valuation_run_id)})
        return False
    return True


def valuation_run_cancel(*, actor: Principal, valuation_run: ValuationRun) -> ValuationRun:
    """Stop a queued or running run: outstanding chunks are revoked, nothing is recorded."""
    with transaction.atomic():
        run = ValuationRun.objects.select_for_update().get(pk=valuation_run.pk)
        if run.is_finished:
            raise Conflict(f"The valuation run has already {run.status}; only a queued or running run can be cancelled.")
        run.status, run.finished_at = ValuationRun.Status.CANCELLED, timezone.now()
        run.save(update_fields=["status", "finished_at"])
        audit_record(actor=actor, action="valuation_run.cancelled", consortium=run.consortium, target=run, data={})
        pending = [chunk.task_id for chunk in run.chunks.filter(done=False)]
        transaction.on_commit(lambda: _revoke(pending))
    return run


def _revoke(task_ids: list[str]) -> None:
    from celery import current_app as app  # the project's app (config/celery.py), without importing above us

    if not task_ids or app.conf.task_always_eager:
        return

    # Chunks that already started see the cancelled status and stop at their next step.
    app.control.revoke(task_ids)


def valuation_run_resend(*, actor: Principal, valuation_run: ValuationRun) -> None:
    """Send a queued or running run's planning step again (after the broker lost its
    messages): it re-sends the chunks not yet done, or the finishing step when none is left.
    Harmless for a run in progress (every step is idempotent), but its chunks may run twice."""
    from valuation.tasks import valuation_run_plan_task  # tasks import services

    with transaction.atomic():
        # Sent before the audit commits (the run itself committed long ago): a broker error
        # reaches the caller and rolls the audit back.
        valuation_run_plan_task.delay(str(valuation_run.id))
        audit_record(actor=actor, action="valuation_run.resent", consortium=valuation_run.consortium,
                     target=valuation_run, data={"status": valuation_run.status})


def valuation_run_fail(*, valuation_run_id, message: str) -> None:
    """Mark a run failed with a readable message, unless it already ended."""
    with transaction.atomic():
        run = ValuationRun.objects.select_for_update().filter(pk=valuation_run_id).first()
        if run is None or run.is_finished:
            return
        run.status, run.finished_at, run.error_message = ValuationRun.Status.FAILED, timezone.now(), message[:2000]
        run.save(update_fields=["status", "finished_at", "error_message"])
