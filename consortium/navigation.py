"""The navigation of a consortium's pages: what each role finds in the menu.

An item shows only when the caller holds its capability (and, for some, a role), so a
participant sees its contributions, statements and disputes, governance the dispute queue,
finance the pools, an auditor the read-only views and the ledger export. Hiding a link is
convenience only: every page checks access itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from consortium.access import Capability, Principal
from consortium.models import Consortium, Role


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    capability: Capability
    roles: frozenset[str] | None = None  # None: every role holding the capability


STAFF = frozenset({Role.FINANCE, Role.GOVERNANCE, Role.AUDITOR})

ITEMS = [
    NavItem("Overview", "consortium-page", Capability.VIEW),
    NavItem("Training runs", "training-runs-page", Capability.VIEW_ALL, STAFF),
    NavItem("Valuations", "valuation-runs-page", Capability.VIEW_VALUATIONS, STAFF),
    NavItem("My contribution", "contributions-page", Capability.VIEW_VALUATIONS, frozenset({Role.PARTICIPANT})),
    NavItem("Revenue pools", "pools-page", Capability.VIEW_POOLS),
    NavItem("Statements", "statements-page", Capability.VIEW_STATEMENTS),
    NavItem("Disputes", "disputes-page", Capability.VIEW_DISPUTES),
    NavItem("Ledger", "ledger-page", Capability.VIEW_LEDGER),
    NavItem("Checkpoints", "checkpoints-page", Capability.VIEW),
    NavItem("Audit log", "audit-page", Capability.VIEW_AUDIT),
    NavItem("API keys", "api-keys-page", Capability.VIEW_API_KEYS),
]


def consortium_nav(*, principal: Principal, consortium: Consortium, path: str) -> list[dict]:
    """The caller's menu for ``consortium``; the item whose page ``path`` is in is current."""
    role = principal.role_in(consortium)
    capabilities = principal.capabilities(consortium)
    items = []
    for item in ITEMS:
        if item.capability not in capabilities or (item.roles is not None and role not in item.roles):
            continue
        url = reverse(item.url_name, kwargs={"slug": consortium.slug})
        items.append({"label": item.label, "url": url, "current": _is_current(url, path, consortium)})
    return items


def _is_current(url: str, path: str, consortium: Consortium) -> bool:
    overview = reverse("consortium-page", kwargs={"slug": consortium.slug})
    return path == url if url == overview else path.startswith(url)
