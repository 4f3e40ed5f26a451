"""Read models of the valuation pages: training runs with their upload counts, who uploaded
what in each round, valuation runs as a list, and a run's results shaped for tables and
charts. Each reads in a fixed number of queries whatever the list length."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce

from consortium.access import Capability, Principal, visible_participants
from consortium.models import Consortium
from consortium.overview import OverviewSection, overview_section
from ledger.selectors import checkpoint_list
from valuation.models import (
    GlobalWeights,
    ParticipantScore,
    ParticipantUpdate,
    TrainingRun,
    ValidationSet,
    ValuationRun,
)


def _count_per_run(queryset, count: Count):
    """A correlated subquery: ``count`` over ``queryset``'s rows of the outer training run."""
    rows = (queryset.filter(training_run=OuterRef("pk")).order_by().values("training_run")
            .annotate(result=count).values("result")[:1])
    return Coalesce(Subquery(rows, output_field=IntegerField()), Value(0))


def training_runs_listed(*, principal: Principal, consortium: Consortium):
    """The consortium's training runs, newest first, each with its rounds (global weights
    uploaded), updates, participants that uploaded, whether it has an active validation set,
    and its latest upload. A participant user's counts cover its own organisation's only."""
    updates = ParticipantUpdate.objects.all()
    if not principal.can(consortium, Capability.VIEW_ALL):
        updates = updates.filter(participant__in=visible_participants(principal, consortium))
    latest = updates.filter(training_run=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    return consortium.training_runs.annotate(
        rounds_count=_count_per_run(GlobalWeights.objects.all(), Count("id")),
        updates_count=_count_per_run(updates, Count("id")),
        participants_count=_count_per_run(updates, Count("participant", distinct=True)),
        has_validation_set=Exists(ValidationSet.objects.filter(training_run=OuterRef("pk"), is_active=True)),
        latest_upload=Subquery(latest),
    ).order_by("-created_at")


def training_run_round_rows(*, principal: Principal, training_run: TrainingRun) -> list[dict]:
    """One row per round that has anything uploaded, oldest first: its global weights, the
    updates (participant and examples) and the participants that have not uploaded one.
    A participant user sees its own organisation's updates only (and is the only one that
    can be missing). Three queries whatever the number of rounds and participants."""
    participants = list(visible_participants(principal, training_run.consortium).order_by("slug"))
    weights = {w.round: w for w in GlobalWeights.objects.filter(training_run=training_run)}
    updates = defaultdict(list)
    for update in (ParticipantUpdate.objects.filter(training_run=training_run, participant__in=participants)
                   .select_related("participant").order_by("round", "participant__slug")):
        updates[update.round].append(update)
    rows = []
    for t in sorted(set(weights) | set(updates)):
        uploaded = {update.participant_id for update in updates[t]}
        rows.append({
            "round": t, "global_weights": weights.get(t), "updates": updates[t],
            "missing": [p for p in participants if p.pk not in uploaded],
            "examples": sum(update.num_examples for update in updates[t]),
            "expected": len(participants),
        })
    return rows


def valuation_runs_listed(*, consortium: Consortium, filters: dict):
    """The consortium's valuation runs, newest first, narrowed by ``filters`` (status,
    training_run, method), with what the list shows of each: training run, requester, and
    ``percent`` done (whole evaluations planned; None for a tolerance run still going)."""
    percent = Case(
        When(status=ValuationRun.Status.SUCCEEDED, then=Value(100)),
        When(progress_total__gt=0, then=F("progress_done") * 100 / F("progress_total")),
        default=None, output_field=IntegerField(),
    )
    runs = (consortium.valuation_runs.select_related("training_run", "created_by", "created_by_key")
            .annotate(percent=percent))
    if "status" in filters:
        runs = runs.filter(status=filters["status"])
    if "training_run" in filters:
        runs = runs.filter(training_run=filters["training_run"])
    if "method" in filters:
        runs = runs.filter(method=filters["method"])
    return runs.order_by("-created_at")


def valuation_run_requester(run: ValuationRun) -> str:
    if run.created_by is not None:
        return run.created_by.get_username()
    if run.created_by_key is not None:
        return f"API key {run.created_by_key.name}"
    return "system"


def progress_percent(progress: dict) -> int | None:
    """Evaluations done as a whole percentage of those planned (None when not planned)."""
    if not progress["total"]:
        return None
    return min(100, int(100 * progress["done"] / progress["total"]))



# -- the consortium overview's sections (consortium/overview.py) ------------------------


@overview_section(order=20)
def valuation_overview(*, principal: Principal, consortium: Consortium) -> OverviewSection | None:
    """Staff: the latest valuation runs and how many training and valuation runs there are.
    A participant user: its own latest contribution (always visible to it) with its interval."""
    if principal.can(consortium, Capability.VIEW_ALL):
        return OverviewSection("valuation/overview.html", {
            "latest_runs": list(consortium.valuation_runs.select_related("training_run").order_by("-created_at")[:5]),
            "training_runs": consortium.training_runs.count(),
            "valuation_runs": consortium.valuation_runs.count(),
        })
    own = principal.own_participant(consortium)
    if own is None or not principal.can(consortium, Capability.VIEW_VALUATIONS):
        return None
    score = (ParticipantScore.objects
             .filter(participant=own, valuation_run__consortium=consortium,
                     valuation_run__status=ValuationRun.Status.SUCCEEDED)
             .select_related("valuation_run__training_run")
             .order_by("-valuation_run__finished_at", "-valuation_run__created_at").first())
    texts = {} if score is None else {name: format(getattr(score, name), ".6g") for name in ("value", "ci_low", "ci_high")}
    return OverviewSection("valuation/overview_own.html", {"score": score, **texts})


@overview_section(order=30)
def checkpoint_overview(*, principal: Principal, consortium: Consortium) -> OverviewSection | None:
    """The ledger's latest signed checkpoint (the ledger is one per deployment, so this is
    not the consortium's own): its size, time and root, with the checkpoints page."""
    if not principal.can(consortium, Capability.VIEW):
        return None
    checkpoint = checkpoint_list().first()
    root = bytes(checkpoint.root).hex() if checkpoint is not None else ""
    return OverviewSection("valuation/overview_checkpoint.html", {"checkpoint": checkpoint, "root": root})
