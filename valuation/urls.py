"""Pages of the valuation app: training runs, valuation runs (start, progress, results),
and a participant's contribution over time."""

from django.urls import path

from valuation import contribution_views, views

urlpatterns = [
    path("c/<slug:slug>/runs/", views.training_runs_page, name="training-runs-page"),
    path("c/<slug:slug>/runs/<uuid:run_id>/", views.training_run_page, name="training-run-page"),
    path("c/<slug:slug>/valuations/", views.valuation_runs_page, name="valuation-runs-page"),
    path("c/<slug:slug>/valuations/<uuid:valuation_run_id>/", views.valuation_run_page, name="valuation-run-page"),
    path("c/<slug:slug>/valuations/<uuid:valuation_run_id>/progress", views.valuation_run_progress_part,
         name="valuation-run-progress-part"),
    path("c/<slug:slug>/contributions/", contribution_views.contributions_page, name="contributions-page"),
]
