"""Dispute pages: a participant files one from a line of its own issued statement; everyone who
may see disputes reads the queue and each dispute (its trail, deadline and, after a
re-valuation, the old and new figures side by side); governance reviews, orders a
re-valuation and decides, each action one form posted to one service call.

Access as the API: ``statement_get`` and ``dispute_get`` (404 outside the caller's scope),
``require`` (403 for a role without the capability). A refused action re-renders the page
with the service's message and its status (400, 409, 413) and writes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from consortium.access import Capability, consortium_get, principal_for, require
from core.errors import Conflict, InvalidInput, NotFound, TooLarge
from core.forms import form_add_service_error
from core.listing import Column, Table, filter_form, filter_values, table_csv
from incentives.access import statement_get
from incentives.dispute_context import comparison_texts, dispute_context, revaluation_status
from incentives.dispute_figures import dispute_implied_kept
from incentives.dispute_forms import DecisionForm, DisputeFileForm, DisputeFilters, RevaluationForm, ReviewForm
from incentives.dispute_selectors import dispute_get
from incentives.models import Dispute, Statement
from incentives.page_selectors import dispute_queue, is_overdue
from incentives.pool_selectors import pool_runs
from incentives.services import dispute_decide, dispute_file, dispute_revaluation_order, dispute_review
from ledger.currencies import money_text

# What a page shows as the service's refusal, next to the field; the rest (NotFound,
# NotAllowed) are Django's 404 and 403.
REFUSALS = (InvalidInput, Conflict, TooLarge)


def _dispute_in(principal, consortium, dispute_id, capability: Capability = Capability.VIEW_DISPUTES) -> Dispute:
    dispute = dispute_get(principal, dispute_id)
    if dispute.statement.pool.consortium_id != consortium.id:
        raise NotFound("No such dispute.")
    require(principal, consortium, capability)
    return dispute


# -- filing -----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def dispute_file_page(request, slug, statement_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    statement = statement_get(principal, statement_id)  # another participant's or a draft: 404
    if statement.pool.consortium_id != consortium.id:
        raise NotFound("No such statement.")
    require(principal, consortium, Capability.FILE_DISPUTES)  # staff: 403, as the API
    if statement.status == Statement.Status.DRAFT:  # unreachable for a participant user (statement_get)
        raise NotFound("No such statement.")
    line = request.GET.get("line")
    initial = {"line": line} if line in Dispute.Line.values else {}
    if request.method == "GET":
        return _file_render(request, principal, consortium, statement, DisputeFileForm(initial=initial))
    form = DisputeFileForm(request.POST, request.FILES)
    if not form.is_valid():
        return _file_render(request, principal, consortium, statement, form, status=400)
    try:
        dispute = _file(principal, statement, form.cleaned_data)
    except REFUSALS as exc:
        form_add_service_error(form, exc)
        return _file_render(request, principal, consortium, statement, form, status=exc.status_code)
    messages.success(request, f"Your dispute was filed. Governance answers by {dispute.response_deadline:%Y-%m-%d}.")
    return redirect("dispute-page", slug=consortium.slug, dispute_id=dispute.pk)


def _file(principal, statement: Statement, data: dict) -> Dispute:
    upload = data["attachment"]
    # As the API, before reading it. (The request body itself was already parsed, uploads
    # streamed to temporary files, by the CSRF check: the web server caps its size.)
    if upload is not None and upload.size > settings.UPLOAD_MAX_BYTES:
        raise TooLarge(f"the attachment is {upload.size} bytes; the limit is {settings.UPLOAD_MAX_BYTES} bytes.",
                       field="attachment")
    return dispute_file(actor=principal, statement=statement, line=data["line"], reason=data["reason"],
                        attachment=upload.read() if upload is not None else None,
                        attachment_filename=getattr(upload, "name", "") or "",
                        attachment_content_type=getattr(upload, "content_type", "") or "")


def _file_render(request, principal, consortium, statement, form, *, status: int = 200):
    context = {"consortium": consortium, "role": principal.role_in(consortium), "statement": statement,
               "form": form, "superseded": statement.status == Statement.Status.SUPERSEDED,
               "limit_mb": settings.UPLOAD_MAX_BYTES // (1024 * 1024)}
    return render(request, "incentives/dispute_file.html", context, status=status)


# -- the queue --------------------------------------------------------------------------------

QUEUE_COLUMNS = [
    Column("Dispute", lambda d: str(d.pk)),
    Column("Filed", lambda d: f"{d.created_at:%Y-%m-%d}"),
    Column("Participant", lambda d: d.participant.slug),
    Column("Pool", lambda d: d.statement.pool.reference),
    Column("Statement version", lambda d: d.statement.version, numeric=True),
    Column("Line", lambda d: d.line),
    Column("Status", lambda d: d.status),
    Column("Response due", lambda d: f"{d.response_deadline:%Y-%m-%d}"),
    Column("Overdue", lambda d: "yes" if is_overdue(d) else "no"),
    Column("Outcome", lambda d: d.outcome),
]


@login_required
def disputes_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_DISPUTES)
    filters = filter_form(DisputeFilters, request)
    rows = dispute_queue(principal=principal, consortium=consortium, **filter_values(filters))
    table = Table(columns=QUEUE_COLUMNS, rows=rows, caption="Disputes", filename=f"disputes-{consortium.slug}",
                  empty="No disputes match." if filters.is_bound else "No disputes.")
    if request.GET.get("format") == "csv":
        return table_csv(table)
    table.paginate(request.GET.get("page"))
    context = {"consortium": consortium, "role": principal.role_in(consortium), "filters": filters, "table": table,
               "rows": [{"dispute": d, "overdue": is_overdue(d)} for d in table.page.object_list],
               "staff": principal.can(consortium, Capability.VIEW_ALL)}
    return render(request, "incentives/disputes.html", context)


# -- one dispute ------------------------------------------------------------------------------


@login_required
def dispute_page(request, slug, dispute_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    dispute = _dispute_in(principal, consortium, dispute_id)
    if request.GET.get("part") == "revaluation":
        return _revaluation_part(request, consortium, dispute)
    implied = _implied(principal, consortium, dispute)
    context = dispute_context(principal=principal, consortium=consortium, dispute=dispute, implied=implied,
                              forms=_action_forms(principal, consortium, dispute, implied=implied))
    wanted = request.GET.get("list")
    if request.GET.get("format") == "csv":
        return table_csv(context["trail_table"] if wanted == "trail" else context["comparison_table"])
    comparison = context["comparison_table"]
    comparison.paginate(request.GET.get("page"))  # the disputing participant first
    comparison.page.object_list = [comparison_texts(row) for row in comparison.page.object_list]
    return render(request, "incentives/dispute.html", context)


def _revaluation_part(request, consortium, dispute):
    """The re-valuation's status for htmx polling; once it has finished, the whole page is
    reloaded (the comparison and the decision forms appear)."""
    status = revaluation_status(dispute)
    if status is None or (status["finished"] and request.headers.get("HX-Request")):
        response = HttpResponse(status=200)
        response["HX-Refresh"] = "true"
        return response
    return render(request, "incentives/dispute_revaluation.html", {"consortium": consortium, "dispute": dispute,
                                                                     "revaluation": status})


# -- governance's actions -----------------------------------------------------------------------

ACTIONS = ("review", "revaluation", "decide")


@login_required
def dispute_action_page(request, slug, dispute_id, action):
    if action not in ACTIONS:
        raise NotFound("No such action on a dispute.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    dispute = _dispute_in(principal, consortium, dispute_id, Capability.RESOLVE_DISPUTES)
    form = _posted_form(action, dispute, request.POST)
    status = 400
    if form.is_valid():
        try:
            done = _act(action, principal, dispute, form.service_input())
        except REFUSALS as exc:
            form_add_service_error(form, exc)
            status = exc.status_code
        else:
            messages.success(request, _done_message(action, done))
            return redirect("dispute-page", slug=consortium.slug, dispute_id=dispute.pk)
    implied = _implied(principal, consortium, dispute)
    forms = _action_forms(principal, consortium, dispute, implied=implied, posted=(action, form))
    context = dispute_context(principal=principal, consortium=consortium, dispute=dispute, forms=forms,
                              implied=implied)
    return render(request, "incentives/dispute.html", {**context, "refused": form}, status=status)


def _posted_form(action: str, dispute: Dispute, data):
    if action == "review":
        return ReviewForm(data)
    if action == "revaluation":
        return RevaluationForm(data, runs=_pool_runs(dispute))
    outcome = data.get("outcome") if data.get("outcome") in Dispute.Outcome.values else ""
    return DecisionForm(data, outcome=outcome, currency=dispute.statement.pool.currency)


def _act(action: str, principal, dispute: Dispute, data: dict) -> Dispute:
    if action == "review":
        return dispute_review(actor=principal, dispute=dispute, **data)
    if action == "revaluation":
        return dispute_revaluation_order(actor=principal, dispute=dispute, **data)
    return dispute_decide(actor=principal, dispute=dispute, **data)


def _done_message(action: str, dispute: Dispute) -> str:
    if action == "review":
        return "The dispute is under review."
    if action == "revaluation":
        return (f"A re-valuation ({dispute.revaluation.method}) was ordered; the old and new figures appear here side "
                "by side once it has finished.")
    if dispute.outcome == Dispute.Outcome.UPHELD:
        return f"Dispute upheld: version {dispute.statement.version + 1} of the statement was issued."
    return "Dispute rejected."


def _implied(principal, consortium, dispute: Dispute):
    """The amount the re-valuation implies (staff only: it rests on every participant's figures)."""
    return dispute_implied_kept(dispute=dispute) if principal.can(consortium, Capability.VIEW_ALL) else None


def _pool_runs(dispute: Dispute) -> list:
    return list(pool_runs(pool=dispute.statement.pool))


def _allowed(dispute: Dispute) -> set[str]:
    """The actions the dispute's state admits (the services refuse the others anyway)."""
    states, run = Dispute.Status, dispute.revaluation
    finished = run is not None and run.status in ("succeeded", "failed", "cancelled")
    failed = run is not None and run.status in ("failed", "cancelled")
    allowed = set()
    if dispute.status == states.OPEN:
        allowed.add("review")
    if dispute.status == states.UNDER_REVIEW or (dispute.status == states.REVALUATION_ORDERED and failed):
        allowed.add("revaluation")
    if dispute.status == states.UNDER_REVIEW or (dispute.status == states.REVALUATION_ORDERED and finished):
        allowed.add("decide")
    return allowed


def _action_forms(principal, consortium, dispute: Dispute, *, implied=None, posted=None) -> dict:
    """The forms governance may use now, keyed review / revaluation / upheld / rejected; a
    posted (refused) form takes the place of its blank one so that what was typed stays."""
    if not principal.can(consortium, Capability.RESOLVE_DISPUTES):
        return {}
    allowed, forms = _allowed(dispute), {}
    if "review" in allowed:
        forms["review"] = ReviewForm()
    if "revaluation" in allowed:
        forms["revaluation"] = RevaluationForm(runs=_pool_runs(dispute))
    if "decide" in allowed:
        currency = dispute.statement.pool.currency
        initial = {} if implied is None else {"amount": money_text(implied, currency)}
        forms["upheld"] = DecisionForm(outcome="upheld", currency=currency, initial=initial)
        forms["rejected"] = DecisionForm(outcome="rejected", currency=currency)
    if posted is not None:
        action, form = posted
        key = form.outcome if action == "decide" else action
        if key in forms:
            forms[key] = form
    return forms
