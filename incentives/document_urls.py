"""Statement documents: downloads under /api/v1/."""

from django.urls import path

from incentives import documents_api

urlpatterns = [
    path("statements/<uuid:statement_id>/document.json", documents_api.StatementDocumentJson.as_view(),
         name="statement-document-json"),
    path("statements/<uuid:statement_id>/document.csv", documents_api.StatementDocumentCsv.as_view(),
         name="statement-document-csv"),
    path("statements/<uuid:statement_id>/document.pdf", documents_api.StatementDocumentPdf.as_view(),
         name="statement-document-pdf"),
]
