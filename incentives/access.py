"""Access helpers for policies, revenue pools and statements: 404 outside the caller's
consortia (and, for a participant user, outside its own organisation's issued
statements), 403 inside them for a role or key scope that does not allow the action."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q

from consortium.access import Capability, Principal, require
from core.errors import NotFound
from incentives.models import RevenuePool, Statement


def pools_visible(principal: Principal):
    """Revenue pools of every consortium where the caller may read them."""
    consortium_ids = [c.id for c in principal.consortia() if principal.can(c, Capability.VIEW_POOLS)]
    return RevenuePool.objects.filter(consortium_id__in=consortium_ids).select_related("consortium", "policy")


def pool_get(principal: Principal, pool_id, capability: Capability = Capability.VIEW_POOLS) -> RevenuePool:
    """A pool of one of the caller's consortia (else 404) that it may ``capability`` (else 403)."""
    try:
        pool = (
            RevenuePool.objects.filter(consortium_id__in=principal.consortium_ids())
            .select_related("consortium", "policy")
            .get(pk=pool_id)
        )
    except (RevenuePool.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such revenue pool.") from None
    require(principal, pool.consortium, capability)
    return pool


def statements_visible(principal: Principal):
    """Statements the caller may read: every statement of a consortium where it reads pools;
    elsewhere, where it reads statements, its own organisation's issued ones (current or
    superseded), never a draft."""
    everything, own = [], []
    for consortium in principal.consortia():
        if principal.can(consortium, Capability.VIEW_POOLS):
            everything.append(consortium.id)
        elif principal.can(consortium, Capability.VIEW_STATEMENTS):
            participant = principal.own_participant(consortium)
            if participant is not None:
                own.append(participant.id)
    published = [Statement.Status.ISSUED, Statement.Status.SUPERSEDED]
    scope = Q(pool__consortium_id__in=everything) | Q(participant_id__in=own, status__in=published)
    return Statement.objects.filter(scope).select_related("pool", "pool__consortium", "pool__policy", "participant")


def statement_get(principal: Principal, statement_id) -> Statement:
    """A statement the caller may read: 404 outside its consortia and, for a participant
    user, outside its own organisation's issued statements; 403 for a role or key scope
    that reads no statements."""
    try:
        statement = (
            Statement.objects.filter(pool__consortium_id__in=principal.consortium_ids())
            .select_related("pool", "pool__consortium", "pool__policy", "participant")
            .get(pk=statement_id)
        )
    except (Statement.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such statement.") from None
    consortium = statement.pool.consortium
    require(principal, consortium, Capability.VIEW_STATEMENTS)
    if principal.can(consortium, Capability.VIEW_POOLS):
        return statement
    own = principal.own_participant(consortium)
    if own is None or statement.participant_id != own.pk or statement.status == Statement.Status.DRAFT:
        raise NotFound("No such statement.")
    return statement
