"""Disputes under /api/v1/: filed against a statement, then handled by id."""

from django.urls import path

from incentives import dispute_api as api

urlpatterns = [
    path("statements/<uuid:statement_id>/disputes/", api.DisputeFile.as_view(), name="statement-dispute-file"),
    path("disputes/", api.DisputeList.as_view(), name="dispute-list"),
    path("disputes/<uuid:dispute_id>/", api.DisputeDetail.as_view(), name="dispute-detail"),
    path("disputes/<uuid:dispute_id>/review/", api.DisputeReview.as_view(), name="dispute-review"),
    path("disputes/<uuid:dispute_id>/revaluation/", api.DisputeRevaluation.as_view(), name="dispute-revaluation"),
    path("disputes/<uuid:dispute_id>/comparison/", api.DisputeComparison.as_view(), name="dispute-comparison"),
    path("disputes/<uuid:dispute_id>/decide/", api.DisputeDecide.as_view(), name="dispute-decide"),
    path("disputes/<uuid:dispute_id>/attachment", api.DisputeAttachment.as_view(), name="dispute-attachment"),
]
