"""Access helper for training runs: 404 outside the caller's consortia."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from consortium.access import Capability, Principal
from core.errors import NotFound
from valuation.models import TrainingRun


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
