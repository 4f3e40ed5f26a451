"""Pages of the valuation app: training runs and who has uploaded what, valuation runs
(start one, follow its progress live, read its results with their uncertainty)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from consortium.access import Capability, consortium_get, principal_for, require
from core.charts import bar_chart, interval_chart
from core.errors import NotFound, ServiceError
from core.forms import form_add_service_error
from core.listing import Column, Table, filter_form, filter_values, table_response
from valuation import services
from valuation.access import training_run_get, valuation_run_get
from valuation.forms import ValuationRunFilters, ValuationStartForm
from valuation.models import ValuationRun
from valuation.page_selectors import (
    progress_percent,
    training_run_round_rows,
    training_runs_listed,
    valuation_run_requester,
    valuation_runs_listed,
)
from valuation.selectors import validation_set_active, valuation_run_progress, valuation_run_scores

# htmx stops polling an element when its request is answered with this status.
STOP_POLLING = 286


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _figure(value) -> str:
    """A valuation figure for reading: six significant digits (the CSV and JSON are exact)."""
    return "" if value is None else format(value, ".6g")


def _share(value) -> str:
    return "" if value is None else f"{100 * value:.2f} %"


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


_ROUND_COLUMNS = [
    Column("Round", lambda r: r["round"], numeric=True),
    Column("Global weights", lambda r: "uploaded" if r["global_weights"] else "missing"),
    Column("Updates", lambda r: f"{len(r['updates'])} of {r['expected']}", numeric=True),
    Column("Examples", lambda r: r["examples"], numeric=True),
    Column("Uploaded (participant: examples)",
           lambda r: ", ".join(f"{u.participant.slug}: {u.num_examples}" for u in r["updates"])),
    Column("Not uploaded", lambda r: ", ".join(p.slug for p in r["missing"])),
]


@login_required
@require_GET
def training_run_page(request, slug, run_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    run = training_run_get(principal, run_id)
    if run.consortium_id != consortium.id:
        raise NotFound("No such training run.")
    table = Table(columns=_ROUND_COLUMNS, caption="Rounds: who has uploaded what",
                  rows=training_run_round_rows(principal=principal, training_run=run),
                  filename=f"{slug}-{slugify(run.name)}-rounds", empty="Nothing uploaded yet.")
    context = {"consortium": consortium, "role": principal.role_in(consortium), "run": run,
               "validation_set": validation_set_active(training_run=run)}
    return table_response(request, table=table, template="valuation/training_run.html", context=context)


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


def _run_in(principal, consortium_slug: str, valuation_run_id):
    consortium = consortium_get(principal, consortium_slug)
    run = valuation_run_get(principal, valuation_run_id)
    if run.consortium_id != consortium.id:
        raise NotFound("No such valuation run.")
    return consortium, run


@login_required
@require_GET
def valuation_run_page(request, slug, valuation_run_id):
    principal = principal_for(request)
    consortium, run = _run_in(principal, slug, valuation_run_id)
    context = {"consortium": consortium, "role": principal.role_in(consortium), "run": run,
               "requester": valuation_run_requester(run) if principal.can(consortium, Capability.VIEW_ALL) else "",
               **_live_context(principal, run)}
    return render(request, "valuation/valuation_run.html", context)


@login_required
@require_GET
def valuation_run_progress_part(request, slug, valuation_run_id):
    """The live part of a run's page: progress while queued or running, polled every 2 s;
    once the run has ended, its outcome, answered with 286 so that htmx stops polling."""
    principal = principal_for(request)
    consortium, run = _run_in(principal, slug, valuation_run_id)
    context = {"consortium": consortium, "run": run, **_live_context(principal, run)}
    return render(request, "valuation/valuation_run_live.html", context,
                  status=STOP_POLLING if run.is_finished else 200)


def _live_context(principal, run: ValuationRun) -> dict:
    progress = valuation_run_progress(valuation_run=run)
    scores = valuation_run_scores(principal=principal, valuation_run=run)
    return {"progress": progress, "percent": progress_percent(progress), "scores": _score_rows(scores),
            "charts": _charts(run, scores)}


def _score_rows(scores: list[dict]) -> list[dict]:
    return [{"participant": row["participant"], "rank": row["rank"], "value": _figure(row.get("value")),
             "stderr": _figure(row.get("stderr")), "ci_low": _figure(row.get("ci_low")),
             "ci_high": _figure(row.get("ci_high")), "share": _share(row.get("share")), "figures": "value" in row}
            for row in scores]


def _charts(run: ValuationRun, scores: list[dict]) -> list:
    """The values with their 95 % intervals, and each participant's value built up by round,
    for the rows whose figures the caller may see."""
    rows = [row for row in scores if "value" in row]
    if not rows:
        return []
    labels = [row["participant"] for row in rows]
    values = interval_chart(
        id="values-chart", title="Contribution with its 95 % interval", labels=labels, y_title=run.metric,
        values=[row["value"] for row in rows], lows=[row["ci_low"] for row in rows],
        highs=[row["ci_high"] for row in rows], columns=["Participant", "Value", "95 % low", "95 % high"],
        rows=[[row["participant"], _figure(row["value"]), _figure(row["ci_low"]), _figure(row["ci_high"])]
              for row in rows],
    )
    rounds = [str(t) for t in run.rounds]
    per_round = bar_chart(
        id="rounds-chart", title="Contribution by round", labels=labels, stacked=True, y_title=run.metric,
        datasets={f"round {t}": [row["per_round"].get(t, 0.0) for row in rows] for t in rounds},
        columns=["Participant", *(f"round {t}" for t in rounds), "Total"],
        rows=[[row["participant"], *(_figure(row["per_round"].get(t)) for t in rounds), _figure(row["value"])]
              for row in rows],
    )
    return [values, per_round]
