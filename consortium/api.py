"""Tenancy API: consortia, participants, memberships, API keys and the audit log."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium import services
from consortium.access import Capability, api_key_get, consortium_get, principal_for, require
from consortium.models import ApiKey, AuditEvent, Consortium, Membership, Participant, Scope, Transparency


class ConsortiumOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Consortium
        fields = ["slug", "name", "transparency", "role", "created_at"]

    def get_role(self, consortium) -> str | None:
        principal = self.context["principal"]
        return "api_key" if principal.api_key is not None else principal.role_in(consortium)


class ParticipantOutput(serializers.ModelSerializer):
    class Meta:
        model = Participant
        fields = ["slug", "name", "created_at"]


class MembershipOutput(serializers.ModelSerializer):
    user = serializers.CharField(source="user.get_username")
    participant = serializers.CharField(source="participant.slug", allow_null=True, default=None)

    class Meta:
        model = Membership
        fields = ["user", "role", "participant", "created_at"]


class ApiKeyOutput(serializers.ModelSerializer):
    prefix = serializers.CharField()
    is_active = serializers.BooleanField()
    created_by = serializers.CharField(source="created_by.get_username", allow_null=True, default=None)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "is_active", "created_at", "created_by", "revoked_at", "last_used_at"]


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The secret key. It is shown in this answer only; store it now.")

    class Meta(ApiKeyOutput.Meta):
        fields = ApiKeyOutput.Meta.fields + ["key"]


class ApiKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.values), allow_empty=False)


class TransparencyInput(serializers.Serializer):
    transparency = serializers.ChoiceField(choices=Transparency.values)


class AuditEventOutput(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "object_type", "object_id", "data"]


class ConsortiumList(ListAPIView):
    serializer_class = ConsortiumOutput

    def get_queryset(self):
        return principal_for(self.request).consortia()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "principal": principal_for(self.request)}


class ConsortiumDetail(APIView):
    @extend_schema(responses=ConsortiumOutput)
    def get(self, request, slug):
        principal = principal_for(request)
        consortium = consortium_get(principal, slug)
        return Response(ConsortiumOutput(consortium, context={"principal": principal}).data)

    @extend_schema(request=TransparencyInput, responses=ConsortiumOutput)
    def patch(self, request, slug):
        principal = principal_for(request)
        consortium = consortium_get(principal, slug)
        require(principal, consortium, Capability.SET_TRANSPARENCY)
        data = TransparencyInput(data=request.data)
        data.is_valid(raise_exception=True)
        consortium = services.consortium_transparency_set(
            actor=principal, consortium=consortium, transparency=data.validated_data["transparency"]
        )
        return Response(ConsortiumOutput(consortium, context={"principal": principal}).data)


class ConsortiumScopedList(ListAPIView):
    """A list inside one consortium, visible with ``capability``."""

    capability = Capability.VIEW

    def consortium(self) -> Consortium:
        principal = principal_for(self.request)
        consortium = consortium_get(principal, self.kwargs["slug"])
        require(principal, consortium, self.capability)
        return consortium


class ParticipantList(ConsortiumScopedList):
    serializer_class = ParticipantOutput

    def get_queryset(self):
        return self.consortium().participants.all()


class MembershipList(ConsortiumScopedList):
    serializer_class = MembershipOutput
    capability = Capability.VIEW_MEMBERS

    def get_queryset(self):
        return self.consortium().memberships.select_related("user", "participant")


class AuditEventList(ConsortiumScopedList):
    serializer_class = AuditEventOutput
    capability = Capability.VIEW_AUDIT

    def get_queryset(self):
        return self.consortium().audit_events.all()


class ApiKeyListCreate(ConsortiumScopedList):
    serializer_class = ApiKeyOutput
    capability = Capability.VIEW_API_KEYS

    def get_queryset(self):
        return self.consortium().api_keys.select_related("created_by")

    @extend_schema(request=ApiKeyInput, responses={201: ApiKeyCreatedOutput})
    def post(self, request, slug):
        principal = principal_for(request)
        consortium = consortium_get(principal, slug)
        require(principal, consortium, Capability.MANAGE_API_KEYS)
        data = ApiKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, raw_key = services.api_key_create(actor=principal, consortium=consortium, **data.validated_data)
        api_key.key = raw_key
        return Response(ApiKeyCreatedOutput(api_key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevoke(APIView):
    @extend_schema(request=None, responses=ApiKeyOutput)
    def post(self, request, slug, key_id):
        principal = principal_for(request)
        consortium = consortium_get(principal, slug)
        require(principal, consortium, Capability.MANAGE_API_KEYS)
        api_key = api_key_get(principal, consortium, key_id)
        return Response(ApiKeyOutput(services.api_key_revoke(actor=principal, api_key=api_key)).data)
