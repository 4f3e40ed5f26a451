"""Revenue pool pages for finance: the list and the form that opens a pool; a pool with its
policy, valuation runs, approvals and statements; and its actions (draft, approve, issue,
mark paid), each one call of the service the API calls. Governance and auditors read the
same pages without the forms and buttons; participant users read their statements instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consortium.access import Capability, consortium_get, principal_for, require
from core.errors import NotFound, ServiceError
from core.forms import form_add_service_error
from core.listing import Column, Table, filter_form, filter_values, table_response
from incentives.access import pool_get
from incentives.pool_forms import PaymentForm, PoolCreateForm, PoolFilters
from incentives.pool_selectors import (
    pool_actions,
    pool_people_load,
    pool_runs,
    pool_statements,
    pool_totals,
    pools_listed,
)
from incentives.services import pool_approve, pool_create, pool_issue, pool_mark_paid, pool_statements_draft
from incentives.services.pools import APPROVALS_NEEDED
from ledger.currencies import money_text

ACTIONS = {
    "draft": (pool_statements_draft, "Statements drafted for {pool.reference}: other finance users approve them."),
    "approve": (pool_approve, "You approved {pool.reference} ({approvals} of {needed} approvals)."),
    "issue": (pool_issue, "{pool.reference} is issued: its statements are published with their ledger proofs."),
    "paid": (pool_mark_paid, "{pool.reference} is marked paid."),
}


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _money(amount, currency: str) -> str:
    return "" if amount is None else f"{money_text(amount, currency)} {currency}"


def share_percent(share: str) -> str:
    """An exact share 'p/q' as a percentage with two decimals, for reading."""
    exact = Fraction(share) * 100
    return f"{(Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(Decimal('0.01'))} %"


@dataclass
class DecoratedTable(Table):
    """A Table whose page's rows get their display texts (``decorate(row)``) once paginated:
    the template then draws badges and links from the row and its texts."""

    decorate: Callable = lambda row: row

    def paginate(self, number) -> None:
        super().paginate(number)
        self.page.object_list = [self.decorate(row) for row in self.page.object_list]


def _pool_texts(pool):
    pool.amount_text = _money(pool.amount, pool.currency)
    return pool


_ANY_ID = "00000000-0000-0000-0000-000000000000"


def row_link(name: str, *args) -> Callable:
    """``pk -> reverse(name, args=[*args, pk])`` at the cost of one ``reverse`` per page, not
    one per row: any UUID stands in for the row's (the URL's last argument)."""
    before, _, after = reverse(name, args=[*args, _ANY_ID]).rpartition(_ANY_ID)
    return lambda pk: f"{before}{pk}{after}"


def _statement_row_html(statement) -> str:
    """The row's cells, written in one pass (every text escaped): fifty rows through template
    tags cost most of the page."""
    superseded = statement.status == "superseded"
    amount = format_html("<s>{}</s>", statement.amount_text) if superseded else statement.amount_text
    return format_html(
        '<th scope="row"><a href="{}">{}</a></th><td class="num">{}</td><td><span class="badge {}">{}</span></td>'
        '<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num" data-testid="statement-amount">{}</td>',
        statement.url, statement.participant.slug, statement.version, statement.status, statement.status,
        statement.contribution_text, statement.share_text, statement.allocated_text, statement.carried_in_text,
        statement.carried_out_text, amount)


def _statement_texts(slug: str) -> Callable:
    """A row's display texts and its link."""
    link = row_link("statement-page", slug)

    def texts(statement):
        currency = statement.pool.currency
        for name in ("amount", "allocated", "carried_in", "carried_out"):
            setattr(statement, f"{name}_text", money_text(getattr(statement, name), currency))
        statement.share_text = share_percent(statement.share)
        statement.contribution_text = format(statement.contribution, ".6g")
        statement.url = link(statement.pk)
        statement.row_html = _statement_row_html(statement)
        return statement

    return texts


# -- the list and the form that opens a pool -------------------------------------------


def _pool_columns(slug: str) -> list[Column]:
    return [
        Column("Reference", lambda p: p.reference, link=lambda p: reverse("pool-page", args=[slug, p.pk])),
        Column("Period", lambda p: p.period),
        Column("Amount", lambda p: money_text(p.amount, p.currency), numeric=True),
        Column("Currency", lambda p: p.currency),
        Column("Status", lambda p: p.status),
        Column("Approvals", lambda p: p.approvals_count, numeric=True),
        Column("Created (UTC)", lambda p: _when(p.created_at)),
        Column("Created by", lambda p: p.created_by.get_username() if p.created_by else ""),
    ]


@login_required
@require_http_methods(["GET", "POST"])
def pools_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_POOLS)
    can_manage = principal.can(consortium, Capability.MANAGE_POOLS)
    form, status = (PoolCreateForm(consortium=consortium) if can_manage else None), 200
    if request.method == "POST":
        require(principal, consortium, Capability.MANAGE_POOLS)
        form = PoolCreateForm(request.POST, consortium=consortium)
        pool, status = _create(principal, consortium, form)
        if pool is not None:
            messages.success(request, f"Pool {pool.reference} opened: draft its statements next.")
            return redirect("pool-page", slug=slug, pool_id=pool.pk)
    filters = filter_form(PoolFilters, request)
    table = DecoratedTable(columns=_pool_columns(slug), caption="Revenue pools", filename=f"{slug}-revenue-pools",
                           rows=pools_listed(consortium=consortium, filters=filter_values(filters)),
                           empty="No revenue pools match.", decorate=_pool_texts)
    context = {"consortium": consortium, "role": principal.role_in(consortium), "filters": filters, "form": form}
    return table_response(request, table=table, template="incentives/pools.html", context=context, status=status)


def _create(principal, consortium, form: PoolCreateForm):
    """The new pool, or None and the status of the refusal, with the errors on ``form``."""
    if not form.is_valid():
        return None, 400
    try:
        return pool_create(actor=principal, consortium=consortium, **form.service_arguments()), 201
    except ServiceError as exc:
        form_add_service_error(form, exc)
        return None, exc.status_code


# -- a pool and its actions ------------------------------------------------------------


def _pool_in(principal, slug: str, pool_id, capability: Capability = Capability.VIEW_POOLS):
    consortium = consortium_get(principal, slug)
    pool = pool_get(principal, pool_id, capability)
    if pool.consortium_id != consortium.id:  # a pool of another of the caller's consortia
        raise NotFound("No such revenue pool.")
    return consortium, pool


def _statement_columns(slug: str, currency: str) -> list[Column]:
    def money(name):
        return lambda s: money_text(getattr(s, name), currency)

    return [
        Column("Participant", lambda s: s.participant.slug,
               link=lambda s: reverse("statement-page", args=[slug, s.pk])),
        Column("Version", lambda s: s.version, numeric=True),
        Column("Status", lambda s: s.status),
        Column("Contribution", lambda s: s.contribution, numeric=True),
        Column("Share", lambda s: share_percent(s.share), numeric=True),
        Column("Allocated", money("allocated"), numeric=True),
        Column("Carried in", money("carried_in"), numeric=True),
        Column("Carried out", money("carried_out"), numeric=True),
        Column(f"Amount ({currency})", money("amount"), numeric=True),
    ]


def _pool_response(request, principal, consortium, pool, *, status: int = 200, payment_form=None):
    pool_people_load(pool=pool)
    approvals = list(pool.approvals.select_related("user").order_by("created_at"))
    totals = pool_totals(pool=pool)
    table = DecoratedTable(columns=_statement_columns(consortium.slug, pool.currency), rows=pool_statements(pool=pool),
                           caption=f"Statements of {pool.reference}", decorate=_statement_texts(consortium.slug),
                           filename=f"{consortium.slug}-{pool.reference}-statements",
                           empty="No statements yet: draft them from the pool's valuation runs.")
    context = {
        "consortium": consortium, "role": principal.role_in(consortium), "pool": pool, "approvals": approvals,
        "valuation_runs": pool_runs(pool=pool),
        "totals": {name: (_money(value, pool.currency) if name != "count" else value)
                   for name, value in totals.items()},
        "corrected": bool(totals["corrections"]),
        "actions": pool_actions(principal=principal, pool=pool, approvers=approvals),
        "payment_form": payment_form or PaymentForm(), "amount": _money(pool.amount, pool.currency),
        "approvals_needed": APPROVALS_NEEDED,
    }
    return table_response(request, table=table, template="incentives/pool.html", context=context, status=status)


@login_required
@require_GET
def pool_page(request, slug, pool_id):
    principal = principal_for(request)
    consortium, pool = _pool_in(principal, slug, pool_id)
    return _pool_response(request, principal, consortium, pool)


@login_required
@require_POST
def pool_action_page(request, slug, pool_id, action):
    """One action on the pool; a refusal re-renders the pool with the service's message and
    status (nothing is written: each service is one transaction)."""
    if action not in ACTIONS:
        raise NotFound("No such action on a revenue pool.")
    principal = principal_for(request)
    consortium, pool = _pool_in(principal, slug, pool_id, Capability.MANAGE_POOLS)
    service, done = ACTIONS[action]
    payment_form = PaymentForm(request.POST) if action == "paid" else None
    if payment_form is not None and not payment_form.is_valid():
        return _pool_response(request, principal, consortium, pool, status=400, payment_form=payment_form)
    extra = payment_form.cleaned_data if payment_form is not None else {}
    try:
        changed = service(actor=principal, pool=pool, **extra)
    except ServiceError as exc:
        messages.error(request, exc.message)
        if payment_form is not None:
            form_add_service_error(payment_form, exc)
        return _pool_response(request, principal, consortium, pool, status=exc.status_code, payment_form=payment_form)
    messages.success(request, done.format(pool=changed, approvals=changed.approvals.count(), needed=APPROVALS_NEEDED))
    return redirect("pool-page", slug=slug, pool_id=pool.pk)
