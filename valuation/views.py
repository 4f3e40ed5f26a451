"""Pages of the valuation app: training runs and who has uploaded what, valuation runs
(start one, follow its progress live, read its results with their uncertainty)."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from consortium.access import Capability, consortium_get, principal_for, require
from core.charts import bar_chart, interval_chart
from core.errors import NotFound, ServiceError
from core.forms import form_add_service_error
from core.listing import PAGE_SIZE, Column, Table, filter_form, filter_values, table_csv, table_response
from core.templatetags.figures import figure, percent
from valuation import services
from valuation.access import training_run_get
from valuation.forms import ValuationRunFilters, ValuationStartForm
from valuation.models import ValuationRun
from valuation.page_selectors import (
    ROUND_LEADERS,
    VisibleScores,
    progress_percent,
    training_run_round,
    training_run_round_csv_rows,
    training_run_round_rows,
    training_run_round_rows_named,
    training_runs_listed,
    valuation_run_in,
    valuation_run_requester,
    valuation_runs_listed,
)
from valuation.selectors import validation_set_active, valuation_run_progress

# htmx stops polling an element when its request is answered with this status.
STOP_POLLING = 286


def _when(value, form: str = "%Y-%m-%d %H:%M") -> str:
    return value.strftime(form) if value else ""


def _second(value) -> str:
    return _when(value, "%Y-%m-%d %H:%M:%S")


# -- training runs ---------------------------------------------------------------------


def _training_run_columns(slug: str) -> list[Column]:
    return [
        Column("Name", lambda r: r.name, link=lambda r: reverse("training-run-page", args=[slug, r.pk])),
        Column("Model", lambda r: f"{r.model_family} · {r.task} · {r.metric}"),
        Column("Rounds", lambda r: r.rounds_count, numeric=True),
        Column("Updates", lambda r: r.updates_count, numeric=True),
        Column("Participants uploaded", lambda r: r.participants_count, numeric=True),
        Column("Validation set", lambda r: "yes" if r.has_validation_set else "no"),
        Column("Latest upload (UTC)", lambda r: _when(r.latest_upload)),
        Column("Registered (UTC)", lambda r: _when(r.created_at)),
    ]


@login_required
@require_GET
def training_runs_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    table = Table(columns=_training_run_columns(slug), caption="Training runs", filename=f"{slug}-training-runs",
                  rows=training_runs_listed(principal=principal, consortium=consortium),
                  empty="No training runs yet. The FL coordinator registers them through the API.")
    context = {"consortium": consortium, "role": principal.role_in(consortium)}
    return table_response(request, table=table, template="valuation/training_runs.html", context=context)


def _round_columns(slug: str, run) -> list[Column]:
    """The rounds list on screen: counts, each round linking to its uploads."""
    page = reverse("training-run-page", args=[slug, run.pk])
    return [
        Column("Round", lambda r: r["round"], link=lambda r: f"{page}?round={r['round']}", numeric=True),
        Column("Global weights", lambda r: "uploaded" if r["global_weights"] else "missing"),
        Column("Updates", lambda r: f"{r['updates']} of {r['expected']}", numeric=True),
        Column("Examples", lambda r: r["examples"], numeric=True),
        Column("Not uploaded", lambda r: r["missing"], numeric=True),
    ]


# The rounds list's CSV names who uploaded what in each round, and who did not.
_ROUND_CSV_COLUMNS = [
    Column("Round", lambda r: r["round"]),
    Column("Global weights", lambda r: "uploaded" if r["global_weights"] else "missing"),
    Column("Updates", lambda r: f"{r['updates']} of {r['expected']}"),
    Column("Examples", lambda r: r["examples"]),
    Column("Uploaded (participant: examples)", lambda r: ", ".join(f"{slug}: {n}" for slug, n in r["uploaded"])),
    Column("Not uploaded", lambda r: ", ".join(r["missing_slugs"])),
]

_UPLOAD_COLUMNS = [
    Column("Participant", lambda u: u.participant.slug),
    Column("Examples", lambda u: u.num_examples, numeric=True),
    Column("Uploaded (UTC)", lambda u: _second(u.created_at)),
    Column("Content SHA-256", lambda u: f"{u.payload_id[:12]}…"),
]

_UPLOAD_CSV_COLUMNS = [
    Column("Participant", lambda r: r["participant"]),
    Column("Status", lambda r: r["status"]),
    Column("Examples", lambda r: r["examples"]),
    Column("Uploaded (UTC)", lambda r: _second(r["uploaded_at"])),
    Column("Content SHA-256", lambda r: r["sha256"]),
]


@login_required
@require_GET
def training_run_page(request, slug, run_id):
    """The rounds, a page of 50 at a time, with their counts; ``?round=t`` lists that
    round's updates and who has not sent one. Each CSV holds every name."""
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    run = training_run_get(principal, run_id)
    if run.consortium_id != consortium.id:
        raise NotFound("No such training run.")
    context = {"consortium": consortium, "role": principal.role_in(consortium), "run": run,
               "validation_set": validation_set_active(training_run=run)}
    if "round" in request.GET:
        return _round_page(request, principal, run, context)
    csv = request.GET.get("format") == "csv"
    rows = (training_run_round_rows_named if csv else training_run_round_rows)(principal=principal, training_run=run)
    table = Table(columns=_ROUND_CSV_COLUMNS if csv else _round_columns(slug, run), rows=rows,
                  caption="Rounds: who has uploaded what", filename=f"{slug}-{slugify(run.name)}-rounds",
                  empty="Nothing uploaded yet.")
    return table_response(request, table=table, template="valuation/training_run.html", context=context)


def _round_page(request, principal, run, context: dict):
    number = request.GET["round"]
    view = None
    if number.isascii() and number.isdigit() and len(number) <= 9:
        view = training_run_round(principal=principal, training_run=run, number=int(number))
    if view is None:
        raise NotFound("No such round.")
    csv = request.GET.get("format") == "csv"
    table = Table(columns=_UPLOAD_CSV_COLUMNS if csv else _UPLOAD_COLUMNS,
                  rows=training_run_round_csv_rows(view) if csv else view["updates"],
                  caption=f"Round {view['round']}: updates", empty="No update in this round yet.",
                  filename=f"{context['consortium'].slug}-{slugify(run.name)}-round-{view['round']}")
    return table_response(request, table=table, template="valuation/training_run.html",
                          context={**context, "round_view": view})


# -- valuation runs --------------------------------------------------------------------


def _valuation_run_columns(slug: str, *, staff: bool) -> list[Column]:
    """The list's columns; who requested a run is staff's business (the API does not say)."""
    columns = [
        Column("Run", lambda r: str(r.pk)[:8], link=lambda r: reverse("valuation-run-page", args=[slug, r.pk])),
        Column("Training run", lambda r: r.training_run.name),
        Column("Method", lambda r: r.method),
        Column("Status", lambda r: r.status),
        Column("Progress (%)", lambda r: r.percent, numeric=True),
        Column("Requested by", valuation_run_requester),
        Column("Requested (UTC)", lambda r: _when(r.created_at)),
        Column("Seed", lambda r: r.seed, numeric=True),
    ]
    return columns if staff else [column for column in columns if column.header != "Requested by"]


@login_required
@require_http_methods(["GET", "POST"])
def valuation_runs_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_VALUATIONS)
    can_start = principal.can(consortium, Capability.START_VALUATION)
    form, status = (ValuationStartForm(consortium=consortium) if can_start else None), 200
    if request.method == "POST":
        require(principal, consortium, Capability.START_VALUATION)
        form = ValuationStartForm(request.POST, consortium=consortium)
        run, status = _start(principal, form)
        if run is not None:
            messages.success(request, f"Valuation run {str(run.pk)[:8]} requested ({run.method}, seed {run.seed}).")
            return redirect("valuation-run-page", slug=slug, valuation_run_id=run.pk)
    return _valuation_list(request, principal, consortium, form=form, status=status)


def _valuation_list(request, principal, consortium, *, form, status: int):
    """The list (filtered by the query string) with the start form below it, or its CSV."""
    # Its own ids: the start form on the same page has fields of the same names.
    filters = filter_form(lambda data: ValuationRunFilters(data, consortium=consortium, auto_id="filter_%s"), request)
    staff = principal.can(consortium, Capability.VIEW_ALL)
    table = Table(columns=_valuation_run_columns(consortium.slug, staff=staff), caption="Valuation runs",
                  rows=valuation_runs_listed(consortium=consortium, filters=filter_values(filters)),
                  filename=f"{consortium.slug}-valuation-runs", empty="No valuation runs match.")
    context = {"consortium": consortium, "role": principal.role_in(consortium), "filters": filters, "form": form,
               "staff": staff}
    return table_response(request, table=table, template="valuation/valuation_runs.html", context=context,
                          status=status)


def _start(principal, form: ValuationStartForm) -> tuple[ValuationRun | None, int]:
    """The requested run (its work is sent once the request commits), or None and the status
    of the refusal, with the errors on ``form``."""
    if not form.is_valid():
        return None, 400
    try:
        with transaction.atomic():  # the run and its audit event together; the work after commit
            return services.valuation_run_start(actor=principal, **form.service_arguments()), 201
    except ServiceError as exc:
        form_add_service_error(form, exc)
        return None, exc.status_code


@login_required
@require_GET
def valuation_run_page(request, slug, valuation_run_id):
    """The run's facts, its live part (progress, or the results a page of 50 at a time with
    their charts) and, with ``?format=csv&list=rounds``, the per-round chart's numbers."""
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    run = valuation_run_in(principal, consortium, valuation_run_id)
    if request.GET.get("format") == "csv" and request.GET.get("list") == "rounds":
        return _rounds_csv(principal, run)
    context = {"consortium": consortium, "role": principal.role_in(consortium), "run": run,
               "requester": valuation_run_requester(run) if principal.can(consortium, Capability.VIEW_ALL) else "",
               "methods": _methods_text(run.details), "rounds_text": _rounds_text(run.rounds),
               **_live_context(request, principal, run)}
    return render(request, "valuation/valuation_run.html", context)


@login_required
@require_GET
def valuation_run_progress_part(request, slug, valuation_run_id):
    """The live part of a run's page: progress while queued or running, polled every 2 s;
    once the run has ended, its outcome, answered with 286 so that htmx stops polling."""
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    run = valuation_run_in(principal, consortium, valuation_run_id)
    context = {"consortium": consortium, "run": run, **_live_context(request, principal, run)}
    return render(request, "valuation/valuation_run_live.html", context,
                  status=STOP_POLLING if run.is_finished else 200)


def _live_context(request, principal, run: ValuationRun) -> dict:
    """Progress while the run goes on; once it has succeeded, one page of its results (by
    rank, ``?page=``) and its charts."""
    if not run.is_finished:
        progress = valuation_run_progress(valuation_run=run)
        return {"progress": progress, "percent": progress_percent(progress)}
    scores = VisibleScores(principal=principal, valuation_run=run)
    page = Paginator(scores, PAGE_SIZE).get_page(request.GET.get("page"))
    charts = [chart for chart in (_values_chart(run, page.object_list), _rounds_chart(run, scores)) if chart]
    return {"scores": _score_rows(page.object_list), "page": page, "charts": charts}


def _methods_text(details: dict) -> str:
    """The methods the engine used, with how many rounds each: "tmc in 50 rounds"."""
    methods = Counter(entry.get("method") for entry in details.get("rounds", []) if entry.get("method"))
    return ", ".join(f"{method} in {n} round{'s' if n != 1 else ''}" for method, n in methods.items())


def _rounds_text(rounds: list[int]) -> str:
    """Round numbers with runs of three or more written as ranges: "0–49" or "0, 1, 5–9"."""
    parts, start = [], 0
    for i in range(1, len(rounds) + 1):
        if i == len(rounds) or rounds[i] != rounds[i - 1] + 1:
            stretch = rounds[start:i]
            parts += [f"{stretch[0]}–{stretch[-1]}"] if len(stretch) >= 3 else [str(t) for t in stretch]
            start = i
    return ", ".join(parts)


def _score_rows(scores: list[dict]) -> list[dict]:
    return [{"participant": row["participant"], "rank": row["rank"], "value": figure(row.get("value")),
             "stderr": figure(row.get("stderr")), "ci_low": figure(row.get("ci_low")),
             "ci_high": figure(row.get("ci_high")), "share": percent(row.get("share")), "figures": "value" in row}
            for row in scores]


def _values_chart(run: ValuationRun, scores: list[dict]):
    """The values of this page's participants (at most 50) with their 95 % intervals."""
    rows = [row for row in scores if "value" in row]
    if not rows:
        return None
    return interval_chart(
        id="values-chart", title="Contribution with its 95 % interval (the participants of this page)",
        labels=[row["participant"] for row in rows], y_title=run.metric,
        values=[row["value"] for row in rows], lows=[row["ci_low"] for row in rows],
        highs=[row["ci_high"] for row in rows], columns=["Participant", "Value", "95 % low", "95 % high"],
        rows=[[row["participant"], figure(row["value"]), figure(row["ci_low"]), figure(row["ci_high"])]
              for row in rows],
    )


def _rounds_chart(run: ValuationRun, scores: VisibleScores):
    """Per round, the leading participants' values stacked, then all the others' (the
    numbers table adds each round's total)."""
    table = scores.by_round(ROUND_LEADERS)
    if table is None:
        return None
    columns, rows = table
    return bar_chart(
        id="rounds-chart", title="Contribution by round (the leading participants stacked; the total is the round's sum)",
        labels=[row[0] for row in rows], stacked=True, y_title=run.metric,
        datasets={name: [row[i] for row in rows] for i, name in enumerate(columns[1:-1], start=1)},
        columns=columns, rows=[[row[0], *(figure(value) for value in row[1:])] for row in rows],
    )


def _rounds_csv(principal, run: ValuationRun):
    """The per-round chart's numbers, exact (numbers stay numbers: never formula-escaped)."""
    columns, rows = VisibleScores(principal=principal, valuation_run=run).by_round(ROUND_LEADERS) or (["Round", "Total"], [])
    table = Table(columns=[Column(name, lambda row, i=i: row[i]) for i, name in enumerate(columns)],
                  rows=rows, caption="", filename=f"valuation-{run.pk}-rounds")
    return table_csv(table)
