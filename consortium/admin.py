"""Django admin for operators: consortia, participants, memberships, API keys, audit log.

Changes go through the services, so the admin writes the same audit events as the pages
and the API, and an API key's secret is shown once, right after it is created.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction

from consortium import services
from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import ApiKey, AuditEvent, Consortium, Membership, Participant, Scope


def _actor(request) -> Principal:
    return Principal(user=request.user)


class AuditedAdmin(admin.ModelAdmin):
    """Records every admin save and delete in the audit log, in the same transaction."""

    audit_name = ""

    def _consortium_of(self, obj):
        return getattr(obj, "consortium", obj if isinstance(obj, Consortium) else None)

    @transaction.atomic
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(actor=_actor(request), action=f"{self.audit_name}.{'changed' if change else 'created'}",
                     consortium=self._consortium_of(obj), target=obj,
                     data={"fields": sorted(form.changed_data)})

    @transaction.atomic
    def delete_model(self, request, obj):
        audit_record(actor=_actor(request), action=f"{self.audit_name}.deleted", consortium=self._consortium_of(obj),
                     target=obj, data={"repr": str(obj)})
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["slug", "name"]

    def has_change_permission(self, request, obj=None):
        return False  # slugs are stable identifiers; add new participants instead


@admin.register(Consortium)
class ConsortiumAdmin(AuditedAdmin):
    audit_name = "consortium"
    list_display = ["slug", "name", "transparency", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ParticipantInline]

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj else []


@admin.register(Participant)
class ParticipantAdmin(AuditedAdmin):
    audit_name = "participant"
    list_display = ["slug", "name", "consortium"]
    list_filter = ["consortium"]
    search_fields = ["slug", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["consortium", "slug"] if obj else []


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "consortium", "role", "participant"]
    list_filter = ["consortium", "role"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change):
        services.membership_set(actor=_actor(request), user=obj.user, consortium=obj.consortium, role=obj.role,
                                participant=obj.participant)

    def delete_model(self, request, obj):
        services.membership_delete(actor=_actor(request), membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            self.delete_model(request, membership)


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = ApiKey
        fields = ["consortium", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "consortium", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["consortium"]
    actions = ["revoke"]
    readonly_fields = ["consortium", "name", "prefix", "scopes", "created_at", "created_by", "last_used_at",
                       "revoked_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj else ["consortium", "name", "scopes"]

    def save_model(self, request, obj, form, change):
        if change:
            return  # keys are immutable; revoke and create a new one instead
        try:
            api_key, raw_key = services.api_key_create(
                actor=_actor(request), consortium=obj.consortium, name=obj.name, scopes=form.cleaned_data["scopes"]
            )
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
            return
        obj.pk, obj.lookup_id = api_key.pk, api_key.lookup_id
        messages.warning(request, f"API key created. Copy it now, it will not be shown again: {raw_key}")

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead, so that the audit trail keeps the key's history

    @admin.action(description="Revoke the selected API keys")
    def revoke(self, request, queryset):
        for api_key in queryset:
            services.api_key_revoke(actor=_actor(request), api_key=api_key)
        messages.success(request, f"Revoked {queryset.count()} key(s).")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "consortium", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["consortium", "action"]
    search_fields = ["actor_label", "action", "object_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
