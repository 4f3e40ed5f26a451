"""Training-run ingestion and valuation-run API routes (the coordinator's contract, DESIGN.md section 7)."""

from django.urls import path

from valuation import api, runs_api

urlpatterns = [
    path("training-runs/", api.TrainingRunListCreate.as_view(), name="training-run-list"),
    path("training-runs/<uuid:run_id>/", api.TrainingRunDetail.as_view(), name="training-run-detail"),
    path(
        "training-runs/<uuid:run_id>/rounds/<int:t>/global-weights",
        api.GlobalWeightsUpload.as_view(),
        name="global-weights-upload",
    ),
    path(
        "training-runs/<uuid:run_id>/rounds/<int:t>/updates/<slug:participant_slug>",
        api.UpdateUpload.as_view(),
        name="update-upload",
    ),
    path("training-runs/<uuid:run_id>/validation-set", api.ValidationSetUpload.as_view(), name="validation-set-upload"),
    path("valuation-runs/", runs_api.ValuationRunListCreate.as_view(), name="valuation-run-list"),
    path("valuation-runs/<uuid:valuation_run_id>/", runs_api.ValuationRunDetail.as_view(),
         name="valuation-run-detail"),
    path("valuation-runs/<uuid:valuation_run_id>/cancel/", runs_api.ValuationRunCancel.as_view(),
         name="valuation-run-cancel"),
    path("valuation-runs/<uuid:valuation_run_id>/results/", runs_api.ValuationRunResults.as_view(),
         name="valuation-run-results"),
    path("valuation-runs/<uuid:valuation_run_id>/results.csv", runs_api.ValuationRunResultsCsv.as_view(),
         name="valuation-run-results-csv"),
]
