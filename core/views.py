"""Error pages that speak JSON under ``/api/``: every API response has the documented body.

Also the schema and docs views, whose refusals are JSON although their answers are not.

Django answers requests that never reach a DRF view (an unmatched route such as a malformed
id or a negative round, a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, an unhandled fault)
through these handlers (``config/urls.py``); pages keep Django's own templates.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def bad_request(request, exception=None):
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return error_response(413, "payload_too_large", "The request body is larger than this endpoint accepts.")
    return error_response(400, "invalid", "The request is malformed.")


def permission_denied(request, exception=None):
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return error_response(403, "permission_denied", "You do not have permission to perform this action.")


def page_not_found(request, exception=None):
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return error_response(404, "not_found", "No such API route or object; check the path and its ids "
                                            "(see /api/v1/schema/).")


def server_error(request):
    if not _is_api(request):
        return defaults.server_error(request)
    return error_response(500, "server_error", "The server failed; the request id in X-Request-ID names it in the logs.")


class JsonErrorsMixin:
    """For API views that answer in another format (YAML, HTML, JavaScript): their refusals
    are still the JSON error body, whatever format was asked for."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and getattr(response, "data", None) is not None:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
            response.content_type = None  # let the JSON renderer name it
        return response


class ApiSchemaView(JsonErrorsMixin, SpectacularAPIView):
    """The OpenAPI schema (YAML, or JSON with ?format=json)."""


class ApiDocsView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is served from the same URL (?script), not inline."""
