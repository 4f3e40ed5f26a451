"""API rate limits per caller: an API key, a signed-in user, or an anonymous address.

Rates come from ``settings.API_THROTTLE_RATES`` and are read on every request, so a
deployment (or a test) changes them without a restart of the class; ``None`` turns one off.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from core.http import client_ip


class CallerRateThrottle(SimpleRateThrottle):
    """One bucket per credential: keys are limited per key, whatever address they call from."""

    cache_format = "throttle:%(scope)s:%(ident)s"

    def allow_request(self, request, view):
        self.scope, self.ident = self._caller(request)
        self.rate = settings.API_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self):  # the rate is chosen per request in allow_request
        return None

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.ident}

    @staticmethod
    def _caller(request) -> tuple[str, str]:
        if request.auth is not None and getattr(request.auth, "pk", None) is not None:
            return "api_key", str(request.auth.pk)
        if request.user is not None and request.user.is_authenticated:
            return "user", str(request.user.pk)
        return "anonymous", client_ip(request) or "unknown"
