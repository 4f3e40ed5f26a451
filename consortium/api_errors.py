"""One JSON error shape for the whole API: ``{"error": {"code", "message", "details"}}``."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with what is already stored."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "payload_too_large"


def _first_message(detail) -> str:
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    if isinstance(detail, dict):
        for name, value in detail.items():
            message = _first_message(value)
            return message if name in ("non_field_errors", "detail") else f"{name}: {message}"
        return ""
    return str(detail)


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else code
    body = {"error": {"code": code, "message": _first_message(detail)}}
    if isinstance(detail, (dict, list)) and not (isinstance(detail, dict) and set(detail) == {"detail"}):
        body["error"]["details"] = detail
    return Response(body, status=response.status_code, headers=_kept_headers(response))


def _kept_headers(response) -> dict:
    return {name: value for name, value in response.items() if name in {"WWW-Authenticate", "Retry-After", "Allow"}}
