"""Django admin for operators: consortia, participants, memberships, API keys, audit log.

Every save and delete goes through the services, so the admin writes the same audit events
as the pages, the API and the commands, and an API key's secret is shown once, right after
it is created. A service's refusal is shown as an error message.
"""

from django import forms
from django.contrib import admin, messages

from consortium import services
from consortium.access import Principal
from consortium.models import ApiKey, AuditEvent, Consortium, Membership, Participant, Scope
from core.errors import ServiceError


def _actor(request) -> Principal:
    return Principal(user=request.user)


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    fields = ["slug", "name"]

    def has_change_permission(self, request, obj=None):
        return False  # slugs are stable identifiers; add new participants instead


@admin.register(Consortium)
class ConsortiumAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "transparency", "created_at"]
    search_fields = ["slug", "name"]
    inlines = [ParticipantInline]

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj else []

    def save_model(self, request, obj, form, change):
        actor = _actor(request)
        if not change:
            created = services.consortium_create(actor=actor, slug=obj.slug, name=obj.name)
            obj.pk, obj.created_at = created.pk, created.created_at
            if obj.transparency != created.transparency:
                services.consortium_transparency_set(actor=actor, consortium=created, transparency=obj.transparency)
            return
        if "name" in form.changed_data:
            services.consortium_rename(actor=actor, consortium=obj, name=obj.name)
        if "transparency" in form.changed_data:
            services.consortium_transparency_set(actor=actor, consortium=obj, transparency=obj.transparency)

    def save_formset(self, request, form, formset, change):
        for participant in formset.save(commit=False):
            services.participant_create(actor=_actor(request), consortium=form.instance, slug=participant.slug,
                                        name=participant.name)
        for participant in formset.deleted_objects:
            services.participant_delete(actor=_actor(request), participant=participant)

    def has_delete_permission(self, request, obj=None):
        return False  # its audit trail and ledger entries refer to it for ever


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "consortium"]
    list_filter = ["consortium"]
    search_fields = ["slug", "name"]

    def get_readonly_fields(self, request, obj=None):
        return ["consortium", "slug"] if obj else []

    def save_model(self, request, obj, form, change):
        if change:
            services.participant_rename(actor=_actor(request), participant=obj, name=obj.name)
            return
        created = services.participant_create(actor=_actor(request), consortium=obj.consortium, slug=obj.slug,
                                              name=obj.name)
        obj.pk, obj.created_at = created.pk, created.created_at

    def delete_model(self, request, obj):
        services.participant_delete(actor=_actor(request), participant=obj)

    def delete_queryset(self, request, queryset):
        for participant in queryset:
            self.delete_model(request, participant)


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
        except ServiceError as exc:
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
