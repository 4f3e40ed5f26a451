"""Ledger pages: entries with filters, an entry with its proof, the export, checkpoints."""

from django.urls import path

from ledger import views

urlpatterns = [
    path("c/<slug:slug>/ledger/", views.ledger_page, name="ledger-page"),
    path("c/<slug:slug>/ledger/export", views.ledger_export_page, name="ledger-export-page"),
    path("c/<slug:slug>/ledger/<int:seq>/", views.ledger_entry_page, name="ledger-entry-page"),
    path("c/<slug:slug>/checkpoints/", views.checkpoints_page, name="checkpoints-page"),
]
