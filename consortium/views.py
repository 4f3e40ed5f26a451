"""Server-rendered pages of the tenancy app: dashboard, consortium, API keys, audit log."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from consortium import services
from consortium.access import Capability, api_key_get, consortium_get, principal_for, require
from consortium.models import Scope
from consortium.overview import overview_sections
from core.errors import ServiceError
from core.forms import form_add_service_error
from core.listing import Column, Table, table_response


@login_required
def dashboard(request):
    principal = principal_for(request)
    rows = [(consortium, principal.role_in(consortium)) for consortium in principal.consortia()]
    return render(request, "consortium/dashboard.html", {"rows": rows})


@login_required
@require_GET
def consortium_page(request, slug):
    """The overview: for staff the pools, the latest checkpoint and valuation runs, the
    training runs and participants; for a participant user its own latest figures and its
    pages. The apps above this one contribute the sections (consortium/overview.py)."""
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    staff = principal.can(consortium, Capability.VIEW_ALL)
    context = {
        "consortium": consortium,
        "role": principal.role_in(consortium),
        "own_participant": principal.own_participant(consortium),
        "sections": overview_sections(principal=principal, consortium=consortium),
    }
    if not staff:
        return render(request, "consortium/consortium.html", context)
    table = Table(columns=PARTICIPANT_COLUMNS, rows=consortium.participants.order_by("name"), caption="Participants",
                  filename=f"{consortium.slug}-participants", empty="No participants yet.")
    return table_response(request, table=table, template="consortium/consortium.html", context=context)


PARTICIPANT_COLUMNS = [Column("Participant", lambda p: p.name), Column("Slug", lambda p: p.slug),
                       Column("Joined (UTC)", lambda p: p.created_at.strftime("%Y-%m-%d"))]


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)


@login_required
def api_keys_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_API_KEYS)
    form = ApiKeyForm(request.POST or None)
    created_key = None
    if request.method == "POST":
        require(principal, consortium, Capability.MANAGE_API_KEYS)
        if form.is_valid():
            try:
                api_key, created_key = services.api_key_create(
                    actor=principal, consortium=consortium, **form.cleaned_data
                )
            except ServiceError as exc:
                form_add_service_error(form, exc)
            else:
                messages.success(request, f"API key {api_key.prefix} created. Copy it now: it is not shown again.")
                form = ApiKeyForm()
    context = {
        "consortium": consortium,
        "api_keys": consortium.api_keys.select_related("created_by"),
        "form": form,
        "created_key": created_key,
        "can_manage": principal.can(consortium, Capability.MANAGE_API_KEYS),
    }
    return render(request, "consortium/api_keys.html", context)


@login_required
@require_POST
def api_key_revoke_page(request, slug, key_id):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.MANAGE_API_KEYS)
    api_key = api_key_get(principal, consortium, key_id)
    services.api_key_revoke(actor=principal, api_key=api_key)
    messages.success(request, f"API key {api_key.prefix} revoked.")
    return redirect("api-keys-page", slug=consortium.slug)


@login_required
def audit_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_AUDIT)
    page = Paginator(consortium.audit_events.all(), 50).get_page(request.GET.get("page"))
    return render(request, "consortium/audit.html", {"consortium": consortium, "page": page})
