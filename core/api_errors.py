"""The one exception handler: every API error is ``{"error": {"code", "message", "details"}}``.

Service errors (``core.errors``) are turned into that body here and nowhere else; DRF's own
exceptions (authentication, parsing, serializer validation, throttling) take the same shape.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import InvalidInput, ServiceError

_DJANGO_CODES = {Http404: "not_found", PermissionDenied: "permission_denied"}
# Headers of DRF's answer that a client needs to act on the error.
_KEPT_HEADERS = {"WWW-Authenticate", "Retry-After", "Allow"}


def service_error_body(exc: ServiceError) -> dict:
    """The documented body of a service error; its status is ``exc.status_code``."""
    if getattr(exc, "errors", None):
        details = exc.errors
    elif exc.field is not None:
        details = {exc.field: [exc.message]}
    elif isinstance(exc, InvalidInput):
        details = {"non_field_errors": [exc.message]}
    else:
        details = None
    body = {"code": exc.code, "message": _first_message(details) if details else exc.message}
    if details:
        body["details"] = details
    return {"error": body}


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response(service_error_body(exc), status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    # DRF answers Django's Http404 and PermissionDenied by these codes' exceptions.
    code = getattr(exc, "default_code", _DJANGO_CODES.get(type(exc), "error"))
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code
    body = {"error": {"code": code, "message": _first_message(detail)}}
    if isinstance(detail, (dict, list)) and not (isinstance(detail, dict) and set(detail) == {"detail"}):
        body["error"]["details"] = detail
    headers = {name: value for name, value in response.items() if name in _KEPT_HEADERS}
    return Response(body, status=response.status_code, headers=headers)


def _first_message(detail) -> str:
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    if isinstance(detail, dict):
        for name, value in detail.items():
            message = _first_message(value)
            return message if name in ("non_field_errors", "detail") else f"{name}: {message}"
        return ""
    return str(detail)
