"""Statement documents for download: JSON (verifiable offline), CSV and PDF.

Who may download what is ``incentives.access.statement_get``'s rule: a participant user its
own organisation's issued statements (anything else is 404), staff and ``read`` keys every
statement of their consortium, other key scopes nothing (403). The documents themselves
come from ``incentives.documents``.
"""

from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from consortium.access import principal_for
from incentives.access import statement_get
from incentives.documents import statement_csv, statement_document, statement_filename, statement_pdf

_REFUSALS = {
    403: OpenApiResponse(description="Your role or key scope reads no statements."),
    404: OpenApiResponse(description="No such statement that you may see (a participant sees only its own issued ones)."),
}


class _FirstRenderer(BaseContentNegotiation):
    """Errors are always the JSON error body, whatever the client's Accept header asks for
    (a browser asking a PDF link for application/pdf must not get 406 instead of a 404)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _attachment(content, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _Download(APIView):
    content_negotiation_class = _FirstRenderer

    def statement(self, request, statement_id):
        return statement_get(principal_for(request), statement_id)


class StatementDocumentJson(_Download):
    @extend_schema(
        tags=["statements"], operation_id="statement_document_json",
        summary="The statement as JSON, with its ledger entry, inclusion proof and checkpoint",
        responses={(200, "application/json"): OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="Format fairshare-statement, version 1; check it offline with "
                        "verify_export.py --statement FILE --public-key KEY."), **_REFUSALS},
    )
    def get(self, request, statement_id):
        statement = self.statement(request, statement_id)
        body = json.dumps(statement_document(statement=statement), indent=2, ensure_ascii=False) + "\n"
        return _attachment(body.encode(), "application/json", statement_filename(statement, "json"))


class StatementDocumentCsv(_Download):
    @extend_schema(
        tags=["statements"], operation_id="statement_document_csv",
        summary="The statement as CSV (item, value), safe to open in a spreadsheet program",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **_REFUSALS},
    )
    def get(self, request, statement_id):
        statement = self.statement(request, statement_id)
        return _attachment(statement_csv(statement=statement).encode(), "text/csv; charset=utf-8",
                           statement_filename(statement, "csv"))


class StatementDocumentPdf(_Download):
    @extend_schema(
        tags=["statements"], operation_id="statement_document_pdf",
        summary="The statement as PDF, rendered from the statement page's template",
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY), **_REFUSALS},
    )
    def get(self, request, statement_id):
        statement = self.statement(request, statement_id)
        return _attachment(statement_pdf(statement=statement), "application/pdf", statement_filename(statement, "pdf"))
