"""Structured request logging: one JSON line per request with its outcome and duration."""

import logging
import time
import uuid

logger = logging.getLogger("fairshare.request")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        request.request_id = request_id
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "actor": _actor(request),
                "remote_addr": request.META.get("REMOTE_ADDR", ""),
            },
        )
        return response


def _actor(request) -> str:
    principal = getattr(request, "_fairshare_principal", None)
    if principal is not None:
        return principal.label
    user = getattr(request, "user", None)
    api_key = getattr(user, "api_key", None)
    if api_key is not None:  # a machine client whose view never built a principal
        return f"api-key:{api_key.prefix} ({api_key.name})"
    if user is not None and user.is_authenticated:
        return f"user:{user.get_username()}"
    return "anonymous"
