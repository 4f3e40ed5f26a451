"""Structured request logging: one JSON line per request with its outcome and duration."""

import logging
import re
import time
import uuid

from core.http import client_ip

logger = logging.getLogger("fairshare.request")
# A caller's request id is kept only if it is a plain token: it is echoed in a header and
# written to every log line, so it must not carry control characters or unbounded length.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_for(request) -> str:
    """The caller's X-Request-ID if it is a plain token of at most 64 characters, else a new one."""
    offered = request.headers.get("X-Request-ID", "")
    return offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_for(request)
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
                "remote_addr": client_ip(request) or "",
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
