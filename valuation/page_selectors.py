"""Read models of the valuation pages: training runs with their upload counts, who uploaded
what in each round, valuation runs as a list, and a run's results shaped for tables and
charts. Each reads in a fixed number of queries whatever the list length."""

from __future__ import annotations

from collections import defaultdict
from copy import copy

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce

from consortium.access import Capability, Principal, figures_visibility, visible_participants
from consortium.models import Consortium, Transparency
from consortium.overview import OverviewSection, overview_section
from core.errors import NotFound
from ledger.selectors import checkpoint_list
from valuation.access import valuation_run_get
from valuation.models import (
    GlobalWeights,
    ParticipantScore,
    ParticipantUpdate,
    TrainingRun,
    ValidationSet,
    ValuationRun,
)
from valuation.selectors import score_row, valuation_run_scores


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


def _updates_visible(principal: Principal, training_run: TrainingRun):
    """The run's updates the caller may see: all of them for staff (an update's participant
    is always one of the run's consortium: valuation.services.uploads), else its own."""
    updates = ParticipantUpdate.objects.filter(training_run=training_run)
    if principal.can(training_run.consortium, Capability.VIEW_ALL):
        return updates
    return updates.filter(participant__in=visible_participants(principal, training_run.consortium))


def training_run_round_rows(*, principal: Principal, training_run: TrainingRun) -> list[dict]:
    """One row per round that has anything uploaded, oldest first: whether its global
    weights are in, how many updates of how many expected, their examples, and how many
    participants have not sent one. A participant user counts its own organisation's
    updates only (and is the only one expected). Three queries, counted by the database:
    nothing is read per update."""
    expected = visible_participants(principal, training_run.consortium).count()
    weights = set(GlobalWeights.objects.filter(training_run=training_run).order_by().values_list("round", flat=True))
    counts = {
        row["round"]: row for row in _updates_visible(principal, training_run).order_by()
        .values("round").annotate(updates=Count("id"), examples=Sum("num_examples"))
    }
    rows = []
    for t in sorted(weights | set(counts)):
        updates = counts[t]["updates"] if t in counts else 0
        rows.append({"round": t, "global_weights": t in weights, "updates": updates, "expected": expected,
                     "examples": counts[t]["examples"] if t in counts else 0, "missing": expected - updates})
    return rows


def training_run_round_rows_named(*, principal: Principal, training_run: TrainingRun) -> list[dict]:
    """The rows of :func:`training_run_round_rows` with who uploaded (slug and examples, by
    slug) and who did not (slugs): the rounds list's CSV. Five queries; it reads every update."""
    rows = training_run_round_rows(principal=principal, training_run=training_run)
    participants = visible_participants(principal, training_run.consortium)
    slugs = list(participants.order_by("slug").values_list("slug", flat=True))
    uploads = defaultdict(list)
    for t, slug, examples in (_updates_visible(principal, training_run).order_by("round", "participant__slug")
                              .values_list("round", "participant__slug", "num_examples")):
        uploads[t].append((slug, examples))
    for row in rows:
        row["uploaded"] = uploads[row["round"]]
        sent = {slug for slug, _ in uploads[row["round"]]}
        row["missing_slugs"] = [slug for slug in slugs if slug not in sent]
    return rows


def training_run_round(*, principal: Principal, training_run: TrainingRun, number: int) -> dict | None:
    """Round ``number`` of a training run: its global weights (or None), the updates the
    caller may see (a queryset by participant slug, to be paginated) and the slugs of the
    participants it may see that have not sent one. None where nothing of the round exists."""
    participants = visible_participants(principal, training_run.consortium)
    weights = GlobalWeights.objects.filter(training_run=training_run, round=number).first()
    updates = (_updates_visible(principal, training_run).filter(round=number).select_related("participant")
               .order_by("participant__slug"))
    if weights is None and not updates.exists():
        return None
    sent = ParticipantUpdate.objects.filter(training_run=training_run, round=number).values("participant_id")
    missing = list(participants.exclude(pk__in=sent).order_by("slug").values_list("slug", flat=True))
    return {"round": number, "global_weights": weights, "updates": updates, "missing": missing}


def training_run_round_csv_rows(round_view: dict) -> list[dict]:
    """Everything about one round for its CSV: every update, then every participant that
    has not sent one."""
    rows = [{"participant": u.participant.slug, "status": "uploaded", "examples": u.num_examples,
             "uploaded_at": u.created_at, "sha256": u.payload_id} for u in round_view["updates"]]
    rows += [{"participant": slug, "status": "not uploaded", "examples": None, "uploaded_at": None, "sha256": ""}
             for slug in round_view["missing"]]
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
            .defer(*ValuationRun.HEAVY_FIELDS).annotate(percent=percent))
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



# -- a valuation run's page: its results a page at a time, its rounds summed ----------


def valuation_run_in(principal: Principal, consortium: Consortium, valuation_run_id) -> ValuationRun:
    """A valuation run of ``consortium`` (the page's, already the caller's), as
    ``valuation_run_get`` gives it: 404 for a run of another consortium, even another of
    the caller's, and 403 without the capability to read valuations."""
    run = valuation_run_get(principal, valuation_run_id)
    if run.consortium_id != consortium.pk:
        raise NotFound("No such valuation run.")
    return run


# The per-round chart stacks this many participants (by rank) and sums the others.
ROUND_LEADERS = 5
# What a list of scores reads (``valuation_run_scores``'s row less its per-round values).
_LISTED = ("valuation_run_id", "participant__slug", "value", "stderr", "ci_low", "ci_high", "share", "rank")


class VisibleScores:
    """A run's scores exactly as ``valuation_run_scores`` (the API's selector) shows them to
    the caller, read a slice at a time: a page of 50 rows reads 50 scores (and a count),
    the CSV all of them. The selector decides what each row shows; the query only leaves
    out the rows it would drop anyway (others' rows under "own figures only")."""

    def __init__(self, *, principal: Principal, valuation_run: ValuationRun):
        self.principal, self.run = principal, valuation_run
        consortium = valuation_run.consortium
        scores = (ParticipantScore.objects.filter(valuation_run=valuation_run).select_related("participant")
                  .order_by("rank", "participant__slug"))
        if valuation_run.status != ValuationRun.Status.SUCCEEDED:
            scores = scores.none()
        own = principal.own_participant(consortium)
        own_only = scores.filter(participant=own) if own is not None else scores.none()
        visibility = figures_visibility(principal, consortium)
        self.scores = own_only if visibility == Transparency.OWN else scores
        # The rows whose figures the caller sees: everyone's, or its own organisation's.
        everyone = visibility == Transparency.ALL
        self.with_figures = scores if everyone else own_only
        self.figures_of = "all" if everyone else (own.pk if own is not None else "none")

    def count(self) -> int:
        return self.scores.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[dict]:
        scores = list(self.scores.only(*_LISTED)[index])
        for score in scores:  # a list shows no per-round values: not read (about 1.5 kB a row at 50 rounds)
            score.per_round = None
        return self._rows(scores)

    def __iter__(self):
        return iter(self[:])

    def _rows(self, scores) -> list[dict]:
        run = copy(self.run)
        run.ranked_scores = list(scores)  # the selector's prefetch (valuation.selectors.valuation_runs_listed)
        return valuation_run_scores(principal=self.principal, valuation_run=run)

    def by_round(self, leaders: int) -> tuple[list[str], list[list]] | None:
        """Per round of the run, in order: the values of the first ``leaders`` participants
        (by rank) whose figures the caller sees, the sum of the others' ("All others", where
        there are more) and the round's total; as (columns, rows), None where the caller sees
        no figures. A succeeded run's scores are written once, with its status, so the table
        (whose totals sum every per-round value) is kept in the cache for a day."""
        if self.run.status != ValuationRun.Status.SUCCEEDED:
            return None
        key = _by_round_key(self.run, self.figures_of, leaders)
        table = cache.get(key)
        if table is None:
            table = _by_round_table(self.run, self._rows(self.with_figures[:leaders + 1]), self.with_figures, leaders)
            cache.set(key, table, timeout=BY_ROUND_KEEP_SECONDS)
        return table or None


BY_ROUND_KEEP_SECONDS = 7 * 24 * 3600


def _by_round_key(run: ValuationRun, figures_of, leaders: int) -> str:
    return f"valuation-run-by-round:{run.pk}:{figures_of}:{leaders}"


def _by_round_table(run: ValuationRun, first: list[dict], with_figures, leaders: int) -> tuple:
    """(columns, rows) of the per-round table from the first ``leaders`` + 1 rows (as the
    caller sees them) and the scores whose figures it sees; () when it sees none."""
    first = [row for row in first if "value" in row]
    if not first:
        return ()
    shown, more = first[:leaders], len(first) > leaders
    totals = _per_round_sums(with_figures)
    columns = ["Round", *(row["participant"] for row in shown), *(["All others"] if more else []), "Total"]
    rows = []
    for t in (str(t) for t in run.rounds):
        values = [row["per_round"].get(t, 0.0) for row in shown]
        total = totals.get(t, 0.0)
        rows.append([f"round {t}", *values, *([total - sum(values)] if more else []), total])
    return columns, rows


def valuation_run_figures_prepare(sender, run: ValuationRun, **kwargs) -> None:
    """Receiver of ``valuation_run_succeeded``: the per-round table as staff see it (every
    figure), kept before anyone asks, so the run page's first view is as fast as the next."""
    scores = (ParticipantScore.objects.filter(valuation_run=run).select_related("participant")
              .order_by("rank", "participant__slug"))
    first = [score_row(score) for score in scores[:ROUND_LEADERS + 1]]
    cache.set(_by_round_key(run, "all", ROUND_LEADERS), _by_round_table(run, first, scores, ROUND_LEADERS),
              timeout=BY_ROUND_KEEP_SECONDS)


def _per_round_sums(scores) -> dict[str, float]:
    """Round (as text) -> the sum of ``scores``' values in that round, summed by the database
    where it can read JSON (the per-round values are not read into Python)."""
    ids, params = scores.order_by().values("pk").query.sql_with_params()
    table, pk, vendor = ParticipantScore._meta.db_table, ParticipantScore._meta.pk.column, connection.vendor
    if vendor == "postgresql":
        sql = (f"SELECT e.key, SUM(e.value::float8) FROM {table} s "
               f"CROSS JOIN LATERAL jsonb_each_text(s.per_round) e WHERE s.{pk} IN ({ids}) GROUP BY e.key")
    elif vendor == "sqlite":
        sql = f"SELECT e.key, SUM(e.value) FROM {table} s, json_each(s.per_round) e WHERE s.{pk} IN ({ids}) GROUP BY e.key"
    else:
        totals: dict[str, float] = defaultdict(float)
        for per_round in scores.values_list("per_round", flat=True):
            for t, value in per_round.items():
                totals[t] += value
        return dict(totals)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: float(total) for key, total in cursor.fetchall()}


# -- the consortium overview's sections (consortium/overview.py) ------------------------


@overview_section(order=20)
def valuation_overview(*, principal: Principal, consortium: Consortium) -> OverviewSection | None:
    """Staff: the latest valuation runs and how many training and valuation runs there are.
    A participant user: its own latest contribution (always visible to it) with its interval."""
    if principal.can(consortium, Capability.VIEW_ALL):
        return OverviewSection("valuation/overview.html", {
            "latest_runs": list(consortium.valuation_runs.select_related("training_run").defer(*ValuationRun.HEAVY_FIELDS)
                                .order_by("-created_at")[:5]),
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
             .defer(*(f"valuation_run__{name}" for name in ValuationRun.HEAVY_FIELDS), "per_round")
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
