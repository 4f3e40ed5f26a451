"""Who may see and do what: the one place where scope and role are decided.

Every page and endpoint resolves its caller to a :class:`Principal` and loads objects
through the access helpers here (or the per-app helpers built on them). An object outside
the caller's consortia is a 404 — never a 403 and never the data; inside the consortium a
missing capability is a 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

from consortium.models import ApiKey, Consortium, Membership, Participant, Role, Scope, Transparency
from core.errors import NotAllowed, NotFound


class Capability(StrEnum):
    VIEW = "view"  # the consortium, its participants, training runs and own uploads
    VIEW_ALL = "view_all"  # every participant's data, not only one's own organisation's
    VIEW_MEMBERS = "view_members"
    VIEW_AUDIT = "view_audit"
    VIEW_API_KEYS = "view_api_keys"
    MANAGE_API_KEYS = "manage_api_keys"
    INGEST = "ingest"
    UPLOAD_VALIDATION = "upload_validation"
    START_VALUATION = "start_valuation"
    SET_TRANSPARENCY = "set_transparency"
    VIEW_LEDGER = "view_ledger"  # ledger entries and proofs; participants only their own
    VIEW_VALUATIONS = "view_valuations"  # valuation runs; participants see figures per transparency
    VIEW_POOLS = "view_pools"  # revenue pools, their approvals and every statement
    VIEW_STATEMENTS = "view_statements"  # statements; participants only their own organisation's
    MANAGE_POOLS = "manage_pools"  # open, draft, approve, issue and mark paid (people only: four eyes)
    SET_POLICY = "set_policy"  # new allocation policy versions
    VIEW_DISPUTES = "view_disputes"  # disputes; participants only their own organisation's
    FILE_DISPUTES = "file_disputes"  # dispute a line of one's own organisation's statement (people only)
    RESOLVE_DISPUTES = "resolve_disputes"  # review, order re-valuations, decide (people only)


_STAFF_READ = {
    Capability.VIEW,
    Capability.VIEW_ALL,
    Capability.VIEW_MEMBERS,
    Capability.VIEW_AUDIT,
    Capability.VIEW_API_KEYS,
    Capability.VIEW_LEDGER,
    Capability.VIEW_VALUATIONS,
    Capability.VIEW_POOLS,
    Capability.VIEW_STATEMENTS,
    Capability.VIEW_DISPUTES,
}

ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.FINANCE: frozenset(
        _STAFF_READ | {Capability.MANAGE_API_KEYS, Capability.START_VALUATION, Capability.MANAGE_POOLS}
    ),
    Role.GOVERNANCE: frozenset(
        _STAFF_READ
        | {Capability.UPLOAD_VALIDATION, Capability.START_VALUATION, Capability.SET_TRANSPARENCY, Capability.SET_POLICY,
           Capability.RESOLVE_DISPUTES}
    ),
    Role.AUDITOR: frozenset(_STAFF_READ),
    Role.PARTICIPANT: frozenset(
        {Capability.VIEW, Capability.VIEW_LEDGER, Capability.VIEW_VALUATIONS, Capability.VIEW_STATEMENTS,
         Capability.VIEW_DISPUTES, Capability.FILE_DISPUTES}
    ),
}

SCOPE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Scope.INGEST: frozenset({Capability.VIEW, Capability.VIEW_ALL, Capability.INGEST}),
    Scope.VALIDATION: frozenset({Capability.VIEW, Capability.VIEW_ALL, Capability.UPLOAD_VALIDATION}),
    Scope.VALUATION: frozenset(
        {Capability.VIEW, Capability.VIEW_ALL, Capability.START_VALUATION, Capability.VIEW_VALUATIONS}
    ),
    Scope.READ: frozenset(_STAFF_READ),
}


@dataclass
class Principal:
    """The caller of a request: a signed-in user or a machine client's API key."""

    user: object | None = None
    api_key: ApiKey | None = None
    _memberships: dict | None = field(default=None, repr=False)

    @property
    def is_authenticated(self) -> bool:
        return self.api_key is not None or bool(self.user and self.user.is_authenticated)

    @property
    def label(self) -> str:
        if self.api_key is not None:
            return f"api-key:{self.api_key.prefix} ({self.api_key.name})"
        if self.user is not None and self.user.is_authenticated:
            return f"user:{self.user.get_username()}"
        return "anonymous"

    @property
    def stored_user(self):
        """The user row behind the caller, for foreign keys; None for keys and the system."""
        return self.user if getattr(self.user, "pk", None) else None

    @cached_property
    def memberships(self) -> dict:
        """Consortium id → Membership, loaded once per request."""
        if self.api_key is not None or not self.is_authenticated:
            return {}
        rows = Membership.objects.filter(user=self.user).select_related("consortium", "participant")
        return {m.consortium_id: m for m in rows}

    def consortium_ids(self) -> set:
        if self.api_key is not None:
            return {self.api_key.consortium_id}
        return set(self.memberships)

    def consortia(self) -> list[Consortium]:
        """The caller's consortia, by name; read from the memberships (or the key) already
        loaded, so asking costs no query."""
        if self.api_key is not None:
            return [self.api_key.consortium]
        return sorted((m.consortium for m in self.memberships.values()), key=lambda c: (c.name, c.slug))

    def role_in(self, consortium: Consortium) -> str | None:
        membership = self.memberships.get(consortium.id)
        return membership.role if membership else None

    def capabilities(self, consortium: Consortium) -> frozenset[Capability]:
        if self.api_key is not None:
            if self.api_key.consortium_id != consortium.id:
                return frozenset()
            granted: set[Capability] = set()
            for scope in self.api_key.scopes:
                granted |= SCOPE_CAPABILITIES.get(scope, frozenset())
            return frozenset(granted)
        membership = self.memberships.get(consortium.id)
        return ROLE_CAPABILITIES[membership.role] if membership else frozenset()

    def can(self, consortium: Consortium, capability: Capability) -> bool:
        return capability in self.capabilities(consortium)

    def own_participant(self, consortium: Consortium) -> Participant | None:
        """The organisation a participant user speaks for; None for staff and keys."""
        membership = self.memberships.get(consortium.id)
        return membership.participant if membership else None


def principal_for(request) -> Principal:
    """The request's principal, built once and cached on the request."""
    cached = getattr(request, "_fairshare_principal", None)
    if cached is not None:
        return cached
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        principal = Principal(api_key=auth)
    else:
        principal = Principal(user=request.user)
    request._fairshare_principal = principal
    # DRF wraps Django's request; the request-log middleware only sees the inner one.
    inner = getattr(request, "_request", None)
    if inner is not None:
        inner._fairshare_principal = principal
    return principal


def consortium_get(principal: Principal, slug: str) -> Consortium:
    """The consortium named ``slug`` if the caller belongs to it, else 404."""
    for consortium in principal.consortia():
        if consortium.slug == slug:
            return consortium
    raise NotFound("No such consortium.")


def require(principal: Principal, consortium: Consortium, capability: Capability) -> None:
    """403 unless the caller, already known to be in ``consortium``, may do ``capability``."""
    if not principal.can(consortium, capability):
        raise NotAllowed(f"Your role does not allow this ({capability}).")


def api_key_get(principal: Principal, consortium: Consortium, key_id) -> ApiKey:
    """An API key of a consortium the caller is in, else 404."""
    if consortium.id not in principal.consortium_ids():
        raise NotFound("No such API key.")
    api_key = consortium.api_keys.filter(pk=key_id).first()
    if api_key is None:
        raise NotFound("No such API key.")
    return api_key


def participant_get(principal: Principal, consortium: Consortium, slug: str) -> Participant:
    """A participant of a consortium the caller is in; a participant user sees only its own."""
    if consortium.id not in principal.consortium_ids():
        raise NotFound("No such participant.")
    participants = consortium.participants.all()
    if not principal.can(consortium, Capability.VIEW_ALL):
        own = principal.own_participant(consortium)
        participants = participants.filter(pk=own.pk if own else None)
    try:
        return participants.get(slug=slug)
    except Participant.DoesNotExist:
        raise NotFound("No such participant.") from None


def visible_participants(principal: Principal, consortium: Consortium):
    """The participants whose own data (uploads, figures) the caller may see."""
    participants = consortium.participants.all()
    if principal.can(consortium, Capability.VIEW_ALL):
        return participants
    own = principal.own_participant(consortium)
    return participants.filter(pk=own.pk) if own else participants.none()


def figures_visibility(principal: Principal, consortium: Consortium) -> str:
    """How much of other participants' figures the caller sees: 'all', 'ranks' or 'own'.

    Staff and keys see all; participant users see what the consortium's transparency
    setting allows. Valuation scores go through this; so must contribution reports and
    statements.
    """
    if principal.can(consortium, Capability.VIEW_ALL):
        return Transparency.ALL
    return consortium.transparency
