"""The client address behind trusted proxies (used by the login lock-out and the request log)."""

import pytest
from django.test import RequestFactory

from core.http import client_ip


def _request(remote="10.0.0.1", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(_request(forwarded="6.6.6.6")) == "10.0.0.1"


@pytest.mark.parametrize(("proxies", "forwarded", "expected"), [
    (1, "203.0.113.7", "203.0.113.7"),
    (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the left entry was sent by the client: forged
    (2, "6.6.6.6, 203.0.113.7, 10.1.1.1", "203.0.113.7"),
    (1, "2001:db8::1", "2001:db8::1"),
    (2, "203.0.113.7", "10.0.0.1"),  # fewer hops than proxies: not through our proxies
    (1, "not-an-address", "10.0.0.1"),
    (1, "", "10.0.0.1"),
])
def test_behind_n_proxies_the_client_is_the_nth_forwarded_address_from_the_right(settings, proxies, forwarded,
                                                                                 expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(_request(forwarded=forwarded)) == expected


@pytest.mark.django_db
def test_the_login_lockout_counts_the_client_behind_the_proxy(client, settings, member):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AXES_FAILURE_LIMIT = 2
    user = member("finance")
    for _ in range(2):
        client.post("/login/", {"username": user.username, "password": "wrong"}, REMOTE_ADDR="10.0.0.1",
                    HTTP_X_FORWARDED_FOR="203.0.113.7")
    locked = client.post("/login/", {"username": user.username, "password": "correct horse battery staple"},
                         REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7")
    other_client = client.post("/login/", {"username": user.username, "password": "correct horse battery staple"},
                               REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert locked.status_code == 429
    assert other_client.status_code == 302
