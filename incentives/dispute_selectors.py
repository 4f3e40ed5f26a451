"""Reading disputes: who may see which (404 outside the caller's consortia and, for a
participant user, outside its own organisation's disputes; 403 for a role or key scope that
reads none), and the side-by-side comparison of a re-valuation with the run it redoes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q

from consortium.access import Capability, Principal, figures_visibility, require
from consortium.models import Transparency
from core.errors import NotFound
from incentives.models import Dispute, Statement
from valuation.models import ParticipantScore, ValuationRun

_RELATED = ("statement", "statement__pool", "statement__pool__consortium", "participant", "filed_by", "decided_by",
            "revaluation", "revalued_run", "revised_statement")
# One dispute: the joins it is checked and shown with; the rest by primary key afterwards (an
# eleven-table join costs about 3 ms to plan on PostgreSQL, three lookups by key far less).
_JOINED = ("statement__pool", "participant", "revaluation", "revalued_run")
_FETCHED = ("filed_by", "decided_by", "revised_statement")
# A run's pinned inputs and per-round details are large (every update of every round) and no
# dispute view reads them; the services that need them load the run themselves.
_UNREAD = (*(f"{run}__{field}" for run in ("revaluation", "revalued_run") for field in ValuationRun.HEAVY_FIELDS),
           *(f"statement__{field}" for field in Statement.HEAVY_FIELDS))


def disputes_visible(principal: Principal):
    """Every dispute of a consortium where the caller sees every participant's data; elsewhere,
    where it reads disputes, its own organisation's."""
    everything, own = [], []
    for consortium in principal.consortia():
        if not principal.can(consortium, Capability.VIEW_DISPUTES):
            continue
        if principal.can(consortium, Capability.VIEW_ALL):
            everything.append(consortium.id)
        elif (participant := principal.own_participant(consortium)) is not None:
            own.append(participant.id)
    scope = Q(statement__pool__consortium_id__in=everything) | Q(participant_id__in=own)
    return Dispute.objects.filter(scope).select_related(*_RELATED).defer(*_UNREAD)


def dispute_get(principal: Principal, dispute_id, capability: Capability = Capability.VIEW_DISPUTES) -> Dispute:
    """A dispute the caller may see (else 404) and may ``capability`` (else 403)."""
    consortia = {consortium.pk: consortium for consortium in principal.consortia()}
    try:
        dispute = (Dispute.objects.filter(statement__pool__consortium_id__in=consortia)
                   .select_related(*_JOINED).prefetch_related(*_FETCHED)
                   .defer(*_UNREAD).get(pk=dispute_id))
    except (Dispute.DoesNotExist, ValidationError, ValueError):
        raise NotFound("No such dispute.") from None
    consortium = dispute.statement.pool.consortium = consortia[dispute.statement.pool.consortium_id]
    require(principal, consortium, Capability.VIEW_DISPUTES)
    if not principal.can(consortium, Capability.VIEW_ALL):
        own = principal.own_participant(consortium)
        if own is None or own.pk != dispute.participant_id:
            raise NotFound("No such dispute.")
    require(principal, consortium, capability)
    return dispute


def dispute_comparison(*, principal: Principal, dispute: Dispute) -> dict:
    """The redone run's scores beside the re-valuation's, per participant: value, standard
    error and 95 % interval of each, the difference (new − old), and whether the new value
    lies outside the old interval. ``rows`` is empty until the re-valuation has succeeded;
    a participant user sees only its own row unless the consortium shows all figures."""
    old_run, new_run = dispute.revalued_run, dispute.revaluation
    result = {"dispute": dispute.pk, "participant": dispute.participant.slug, "old_run": old_run,
              "new_run": new_run, "rows": []}
    if old_run is None or new_run is None or new_run.status != ValuationRun.Status.SUCCEEDED:
        return result
    consortium = dispute.statement.pool.consortium
    if figures_visibility(principal, consortium) == Transparency.ALL:
        result["rows"] = comparison_rows(old_run=old_run, new_run=new_run)
    elif (own := principal.own_participant(consortium)) is not None:
        result["rows"] = comparison_rows(old_run=old_run, new_run=new_run, only=own)
    return result


def comparison_rows(*, old_run: ValuationRun, new_run: ValuationRun, only=None) -> list[dict]:
    """The comparison's rows, by participant slug: every participant's, or ``only`` one's."""
    scores = ParticipantScore.objects.filter(valuation_run__in=[old_run, new_run])
    if only is not None:
        scores = scores.filter(participant=only)
    by_slug: dict[str, dict] = {}
    # Plain rows, not model instances: a comparison reads every participant's score in two runs.
    for run_id, slug, *figures in scores.values_list("valuation_run_id", "participant__slug", *_FIGURES):
        by_slug.setdefault(slug, {})["old" if run_id == old_run.pk else "new"] = dict(zip(_FIGURES, figures))
    return [_row(slug, sides.get("old"), sides.get("new")) for slug, sides in sorted(by_slug.items())]


_FIGURES = ("value", "stderr", "ci_low", "ci_high", "share")  # the API shows all but the share


def _row(slug: str, old: dict | None, new: dict | None) -> dict:
    row = {"participant": slug, "old": old, "new": new, "difference": None, "outside_old_interval": None}
    if old is not None and new is not None:
        row["difference"] = new["value"] - old["value"]
        row["outside_old_interval"] = not (old["ci_low"] <= new["value"] <= old["ci_high"])
    return row
