"""Read models of training runs (rounds and who has uploaded what) and valuation runs
(progress, and scores as the caller may see them)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db.models import Count, Max, Prefetch, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from consortium.access import Principal, figures_visibility, visible_participants
from consortium.models import Transparency
from valuation.models import (
    GlobalWeights,
    ParticipantScore,
    ParticipantUpdate,
    TrainingRun,
    ValidationSet,
    ValuationRun,
)


def training_run_rounds(*, principal: Principal, training_run: TrainingRun) -> list[dict]:
    """One entry per round that has anything uploaded, oldest first.

    A participant user sees the global weights and its own organisation's updates only.
    """
    weights = {w.round: w for w in GlobalWeights.objects.filter(training_run=training_run)}
    updates = defaultdict(list)
    visible = visible_participants(principal, training_run.consortium)
    for update in (
        ParticipantUpdate.objects.filter(training_run=training_run, participant__in=visible)
        .select_related("participant", "payload")
        .order_by("round", "participant__slug")
    ):
        updates[update.round].append(update)
    return [
        {"round": t, "global_weights": weights.get(t), "updates": updates.get(t, [])}
        for t in sorted(set(weights) | set(updates))
    ]


def validation_set_active(*, training_run: TrainingRun) -> ValidationSet | None:
    return training_run.validation_sets.filter(is_active=True).select_related("payload").first()


def valuation_runs_listed(runs):
    """``runs`` with what a listing shows of each, read in a fixed number of queries
    whatever the page size: chunk counts annotated, scores prefetched in rank order."""
    return runs.select_related("consortium").annotate(
        chunks_total=Count("chunks"), chunks_done=Count("chunks", filter=Q(chunks__done=True)),
    ).prefetch_related(Prefetch("scores", queryset=_ranked_scores(), to_attr="ranked_scores"))


def _ranked_scores():
    return ParticipantScore.objects.select_related("participant").order_by("rank", "participant__slug")


def valuation_run_progress(*, valuation_run: ValuationRun) -> dict:
    """Evaluations done of the planned total (None for tolerance runs) and chunks done."""
    if hasattr(valuation_run, "chunks_total"):  # annotated by valuation_runs_listed
        chunks = {"total": valuation_run.chunks_total, "done": valuation_run.chunks_done}
    else:
        chunks = valuation_run.chunks.aggregate(total=Count("id"), done=Count("id", filter=Q(done=True)))
    return {
        "done": valuation_run.progress_done,
        "total": valuation_run.progress_total or None,
        "chunks_done": chunks["done"],
        "chunks_total": chunks["total"],
    }


def valuation_runs_stalled(*, idle: timedelta, run_ids=None):
    """Queued or running runs with nothing new for ``idle``: not started, or no chunk
    finished since (their messages may have been lost with the broker), oldest first."""
    runs = ValuationRun.objects.filter(status__in=[ValuationRun.Status.QUEUED, ValuationRun.Status.RUNNING])
    if run_ids is not None:
        runs = runs.filter(pk__in=run_ids)
    return (
        runs.annotate(last_activity=Greatest(
            "created_at", Coalesce("started_at", "created_at"), Coalesce(Max("chunks__finished_at"), "created_at"),
        ))
        .filter(last_activity__lte=timezone.now() - idle)
        .order_by("created_at")
    )


def valuation_run_scores(*, principal: Principal, valuation_run: ValuationRun) -> list[dict]:
    """The run's scores as the caller may see them (``figures_visibility``): every figure
    for staff and keys; for a participant user its own row, plus everyone's rank where the
    consortium publishes ranks, or every row where it publishes all figures."""
    if valuation_run.status != ValuationRun.Status.SUCCEEDED:
        return []
    consortium = valuation_run.consortium
    visibility = figures_visibility(principal, consortium)
    own = principal.own_participant(consortium)
    rows = []
    scores = getattr(valuation_run, "ranked_scores", None)  # prefetched by valuation_runs_listed
    for score in _ranked_scores().filter(valuation_run=valuation_run) if scores is None else scores:
        mine = own is not None and score.participant_id == own.pk
        if visibility == Transparency.ALL or mine:
            rows.append(score_row(score))
        elif visibility == Transparency.RANKS:
            rows.append({"participant": score.participant.slug, "rank": score.rank})
    return rows


def score_row(score: ParticipantScore) -> dict:
    """Every figure of one score (what a caller who sees all figures gets)."""
    return {
        "participant": score.participant.slug,
        "value": score.value,
        "stderr": score.stderr,
        "ci_low": score.ci_low,
        "ci_high": score.ci_high,
        "share": score.share,
        "rank": score.rank,
        "per_round": score.per_round,
    }
