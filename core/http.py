"""Who is calling, as far as the network can tell: the client address behind trusted proxies."""

from __future__ import annotations

from ipaddress import ip_address

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or with ``TRUSTED_PROXY_COUNT = n`` the address
    that the outermost of our n proxies saw, which is the n-th entry of X-Forwarded-For from the
    right (entries further left were sent by the client and can be forged)."""
    remote = request.META.get("REMOTE_ADDR") or None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies < 1:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote  # the request did not come through all our proxies
    candidate = forwarded[-proxies]
    try:
        return str(ip_address(candidate))
    except ValueError:
        return remote
