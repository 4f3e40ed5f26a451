"""A dispute's figures that are final once its re-valuation has succeeded, computed once and
kept in the cache: the comparison of the two runs and the amount the re-valuation implies.

Both read every participant's scores in two runs, and the implied amount splits the pool
again exactly (fractions); at 200 participants that is tens of milliseconds, and the answer
cannot change afterwards (the runs' scores, the issued pool, its policy and carried amounts
are all fixed). The valuation app announces a run's success (``valuation_run_succeeded``);
:func:`dispute_figures_prepare` then computes them for the disputes it re-valued, so the
first view is as fast as the next. Should the cache have lost them, the next view computes
them again. The keys name everything the figures rest on.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.core.cache import cache

from consortium.access import Principal, figures_visibility
from consortium.models import Consortium, Transparency
from incentives.dispute_selectors import comparison_rows, dispute_comparison
from incentives.models import Dispute
from incentives.page_selectors import implied_amount
from valuation.models import ValuationRun

logger = logging.getLogger(__name__)
KEEP_SECONDS = 7 * 24 * 3600


def _implied_key(dispute: Dispute) -> str:
    return f"dispute-implied:{dispute.pk}:{dispute.revaluation_id}:{dispute.statement_id}"


def _comparison_key(dispute: Dispute, seen: str, own) -> str:
    return (f"dispute-comparison:{dispute.pk}:{dispute.revalued_run_id}:{dispute.revaluation_id}:{seen}:"
            f"{own.pk if own is not None else '-'}")


def dispute_implied_kept(*, dispute: Dispute) -> Decimal | None:
    """``implied_amount``, from the cache once the re-valuation has succeeded."""
    kept = cache.get(_implied_key(dispute))
    if kept is not None:
        return kept["amount"]
    amount = implied_amount(dispute=dispute)
    if amount is not None:  # nothing final to keep before the re-valuation has succeeded
        cache.set(_implied_key(dispute), {"amount": amount}, timeout=KEEP_SECONDS)
    return amount


def dispute_comparison_kept(*, principal: Principal, consortium: Consortium, dispute: Dispute) -> dict:
    """``dispute_comparison`` for this caller, its rows from the cache once final."""
    seen = figures_visibility(principal, consortium)
    own = None if seen == Transparency.ALL else principal.own_participant(consortium)
    rows = cache.get(_comparison_key(dispute, seen, own))
    if rows is not None:
        return {"dispute": dispute.pk, "participant": dispute.participant.slug, "old_run": dispute.revalued_run,
                "new_run": dispute.revaluation, "rows": rows}
    comparison = dispute_comparison(principal=principal, dispute=dispute)
    if comparison["rows"]:
        cache.set(_comparison_key(dispute, seen, own), comparison["rows"], timeout=KEEP_SECONDS)
    return comparison


def dispute_figures_prepare(sender, run: ValuationRun, **kwargs) -> None:
    """Receiver of ``valuation_run_succeeded``: the staff's comparison and the implied amount
    of every dispute that ``run`` re-valued, kept before anyone asks."""
    disputes = Dispute.objects.filter(revaluation=run).select_related("statement__pool", "participant",
                                                                        "revalued_run", "revaluation")
    for dispute in disputes:
        if dispute.revalued_run is None:
            continue
        rows = comparison_rows(old_run=dispute.revalued_run, new_run=dispute.revaluation)
        cache.set(_comparison_key(dispute, Transparency.ALL, None), rows, timeout=KEEP_SECONDS)
        dispute_implied_kept(dispute=dispute)
