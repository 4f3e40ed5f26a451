"""Pages of the valuation app."""

from django.urls import path

from valuation import views

urlpatterns = [
    path("c/<slug:slug>/runs/<uuid:run_id>/", views.training_run_page, name="training-run-page"),
]
