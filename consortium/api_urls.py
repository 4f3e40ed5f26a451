"""Tenancy API routes under /api/v1/."""

from django.urls import path

from consortium import api

urlpatterns = [
    path("consortia/", api.ConsortiumList.as_view(), name="consortium-list"),
    path("consortia/<slug:slug>/", api.ConsortiumDetail.as_view(), name="consortium-detail"),
    path("consortia/<slug:slug>/participants/", api.ParticipantList.as_view(), name="participant-list"),
    path("consortia/<slug:slug>/memberships/", api.MembershipList.as_view(), name="membership-list"),
    path("consortia/<slug:slug>/audit-events/", api.AuditEventList.as_view(), name="audit-event-list"),
    path("consortia/<slug:slug>/api-keys/", api.ApiKeyListCreate.as_view(), name="api-key-list"),
    path("consortia/<slug:slug>/api-keys/<uuid:key_id>/revoke", api.ApiKeyRevoke.as_view(), name="api-key-revoke"),
]
