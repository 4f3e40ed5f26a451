"""Settlement pages (sign-in sessions)."""

from django.urls import path

from incentives import views

urlpatterns = [
    path("c/<slug:slug>/statements/<uuid:statement_id>/", views.statement_page, name="statement-page"),
]
