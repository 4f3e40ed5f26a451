"""Access helpers for training runs and valuation runs: 404 outside the caller's consortia,
403 inside them for a caller whose role or key scope does not allow the action."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from consortium.access import Capability, Principal, require
from core.errors import NotAllowed, NotFound
from valuation.models import TrainingRun, ValuationRun


def training_runs_visible(principal: Principal):
    """Training runs of every consortium where the caller may view them."""
    consortium_ids = [
        consortium.id for consortium in principal.consortia() if principal.can(consortium, Capability.VIEW)
    ]
    return TrainingRun.objects.filter(consortium_id__in=consortium_ids).select_related("consortium")


def training_run_get(principal: Principal, run_id) -> TrainingRun:
    try:
        return training_runs_visible(principal).get(pk=run_id)
    except (TrainingRun.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such training run.") from None


def valuation_reader_require(principal: Principal) -> None:
    """403 unless the caller may read the valuation runs of at least one of its consortia."""
    if not any(principal.can(c, Capability.VIEW_VALUATIONS) for c in principal.consortia()):
        raise NotAllowed("Your role or key scope does not allow reading valuation runs (scope valuation or read).")


def valuation_runs_visible(principal: Principal):
    """Valuation runs of every consortium where the caller may read them."""
    consortium_ids = [
        consortium.id for consortium in principal.consortia() if principal.can(consortium, Capability.VIEW_VALUATIONS)
    ]
    return ValuationRun.objects.filter(consortium_id__in=consortium_ids).select_related("consortium", "training_run")


def valuation_run_get(principal: Principal, run_id, capability: Capability = Capability.VIEW_VALUATIONS) -> ValuationRun:
    """A valuation run of one of the caller's consortia (else 404) that it may ``capability`` (else 403).

    Its pinned inputs (every update of every round: megabytes at volume) are read only if
    used: the API and the pages show a digest of them, never the inputs themselves."""
    try:
        run = (
            ValuationRun.objects.filter(consortium_id__in=principal.consortium_ids())
            .select_related("consortium", "training_run", "created_by", "created_by_key")
            .defer("inputs")
            .get(pk=run_id)
        )
    except (ValuationRun.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such valuation run.") from None
    require(principal, run.consortium, capability)
    return run
