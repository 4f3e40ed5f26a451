"""API key authentication for machine clients: ``Authorization: Api-Key <key>``."""

import hmac

from django.utils import timezone
from rest_framework import authentication, exceptions

from consortium.models import API_KEY_PREFIX, ApiKey, hash_api_key

KEYWORD = "Api-Key"


class ApiKeyUser:
    """Stands in for ``request.user`` when a machine client calls; it has no memberships."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key

    def get_username(self) -> str:
        return self.api_key.prefix

    def __str__(self) -> str:
        return self.api_key.prefix


def api_key_find(raw_key: str) -> ApiKey | None:
    """The active key matching ``raw_key``; the comparison takes constant time."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    key = ApiKey.objects.select_related("consortium").filter(lookup_id=parts[1]).first()
    if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw_key)):
        return None
    return key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw_key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        raw_key = raw_key.strip()
        if not raw_key:
            raise exceptions.AuthenticationFailed("The Api-Key header carries no key.")
        key = api_key_find(raw_key)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        now = timezone.now()
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
        return ApiKeyUser(key), key

    def authenticate_header(self, request) -> str:
        # Makes unauthenticated API calls answer 401 with a challenge, not 403.
        return KEYWORD
