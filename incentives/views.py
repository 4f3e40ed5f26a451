"""Settlement pages: the list of statements (staff: the consortium's; a participant: its own
organisation's issued ones) and a statement, with its chart, its figures, its downloads and,
for its participant, a link to dispute each line."""

from __future__ import annotations

from functools import partial

from django import forms
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from consortium.access import Capability, consortium_get, principal_for, require
from core.errors import NotFound
from core.forms import PlainSelect
from core.listing import Column, Table, filter_form, filter_values, table_csv
from incentives.access import statement_get
from incentives.documents import TEMPLATE, statement_page_context
from incentives.models import Statement
from incentives.page_selectors import statement_dispute_lines, statement_pools, statements_in, statements_listed
from incentives.pool_views import row_link
from ledger.currencies import money_text

# The statement document's row label for each line a participant may dispute.
DISPUTE_ROW_LABELS = {"amount": "Amount", "contribution": "Contribution", "share": "Share",
                      "data_volume": "Data volume (examples)"}


def _statement_in(principal, consortium, statement_id) -> Statement:
    statement = statement_get(principal, statement_id)
    if statement.pool.consortium_id != consortium.id:  # a statement of another of the caller's consortia
        raise NotFound("No such statement.")
    return statement


@login_required
def statement_page(request, slug, statement_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    statement = _statement_in(principal, consortium, statement_id)
    context = statement_page_context(statement=statement)
    lines = statement_dispute_lines(principal=principal, statement=statement)
    return render(request, TEMPLATE, {**context, "role": principal.role_in(consortium),
                                      "dispute_rows": _dispute_rows(context["rows"], lines, consortium, statement)})


def _dispute_rows(rows, lines: dict, consortium, statement: Statement) -> list:
    """The document's rows as (label, value, dispute link or None) for a participant that may
    dispute lines of this statement (empty otherwise): the link files a dispute on the line,
    or opens the one pending on it."""
    if not lines:
        return []
    links = {}
    for line, pending in lines.items():
        url = (reverse("dispute-page", args=[consortium.slug, pending.pk]) if pending else
               f"{reverse('dispute-file-page', args=[consortium.slug, statement.pk])}?line={line}")
        links[DISPUTE_ROW_LABELS[line]] = {"url": url, "text": "Dispute open" if pending else "Dispute this line"}
    return [(label, value, links.get(label)) for label, value in rows]


class StatementFilters(forms.Form):
    pool = forms.ChoiceField(label="Pool", required=False, widget=PlainSelect)
    participant = forms.ChoiceField(label="Participant", required=False, widget=PlainSelect)
    status = forms.ChoiceField(label="Status", required=False, choices=[("", "any"), *Statement.Status.choices])
    version = forms.IntegerField(label="Version", required=False, min_value=1)

    def __init__(self, data=None, *, pools=(), participants=None):
        super().__init__(data)
        self.fields["pool"].choices = [("", "any"), *((p.reference, f"{p.reference} ({p.period})") for p in pools)]
        if participants is None:  # a participant user: only its own organisation's issued statements anyway
            del self.fields["participant"]
            self.fields["status"].choices = [c for c in self.fields["status"].choices if c[0] != Statement.Status.DRAFT]
        else:
            self.fields["participant"].choices = [("", "any"), *participants]


def _amount(statement: Statement) -> str:
    return money_text(statement.amount, statement.pool.currency)


COLUMNS = [
    Column("Statement", lambda s: str(s.pk)),
    Column("Pool", lambda s: s.pool.reference),
    Column("Period", lambda s: s.pool.period),
    Column("Participant", lambda s: s.participant.slug),
    Column("Amount", _amount, numeric=True),
    Column("Currency", lambda s: s.pool.currency),
    Column("Version", lambda s: s.version, numeric=True),
    Column("Status", lambda s: s.status),
    Column("Superseded by version", lambda s: getattr(getattr(s, "superseded_by", None), "version", None)),
    Column("Issued at", lambda s: s.issued_at.isoformat() if s.issued_at else ""),
]


@login_required
def statements_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_STATEMENTS)
    staff = principal.can(consortium, Capability.VIEW_POOLS)
    statements = statements_in(principal=principal, consortium=consortium)
    participants = consortium.participants.order_by("slug").values_list("slug", "name") if staff else None
    filters = filter_form(partial(StatementFilters, pools=statement_pools(statements=statements),
                                  participants=participants), request)
    rows = statements_listed(statements=statements, **filter_values(filters))
    table = Table(columns=COLUMNS, rows=rows, caption="Statements", filename=f"statements-{consortium.slug}",
                  empty="No statements match." if filters.is_bound else "No statements yet.")
    if request.GET.get("format") == "csv":
        return table_csv(table)
    table.paginate(request.GET.get("page"))
    rows_of = _Rows(consortium.slug, staff=staff)
    context = {"consortium": consortium, "role": principal.role_in(consortium), "filters": filters, "staff": staff,
               "table": table, "rows": [{"statement": statement, "html": rows_of.row_html(statement)}
                        for statement in table.page.object_list]}
    return render(request, "incentives/statements.html", context)


class _Rows:
    """A statement's row on screen: its figures, state and links, written in one pass (every
    text escaped by ``format_html``); fifty rows through template tags cost most of the page."""

    def __init__(self, slug: str, *, staff: bool):
        self.staff = staff
        self.links = {"page": row_link("statement-page", slug), "pool": row_link("pool-page", slug),
                      "pdf": row_link("statement-document-pdf"), "csv": row_link("statement-document-csv"),
                      "json": row_link("statement-document-json")}

    def row_html(self, statement: Statement) -> str:
        pool, participant, revised_by = statement.pool, statement.participant, getattr(statement, "superseded_by", None)
        link = {key: self.links[key](statement.pk) for key in ("page", "pdf", "csv", "json")}
        reference = (format_html('<a href="{}">{}</a>', self.links["pool"](statement.pool_id), pool.reference)
                     if self.staff else pool.reference)
        revised = mark_safe(' <span class="muted">(revised)</span>') if statement.supersedes_id else ""
        newer = (format_html(' <a href="{}">version {}</a>', self.links["page"](revised_by.pk), revised_by.version)
                 if revised_by else "")
        return format_html(
            '<td>{}</td><td>{}</td><td>{} <span class="muted">({})</span></td>'
            '<td class="num"><a href="{}">{} {}</a></td><td class="num">{}{}</td>'
            '<td><span class="badge {}">{}</span>{}</td>'
            '<td class="downloads"><a href="{}">PDF</a> <a href="{}">CSV</a> <a href="{}">JSON</a></td>',
            reference, pool.period, participant.name, participant.slug, link["page"], _amount(statement),
            pool.currency, statement.version, revised, statement.status, statement.get_status_display(), newer,
            link["pdf"], link["csv"], link["json"])
