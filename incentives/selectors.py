"""Read models of settlement: what a pool's valuation runs say about each participant, and
the amounts carried from earlier periods."""

from __future__ import annotations

import math
from collections import defaultdict
from decimal import Decimal

from django.db.models import Sum

from incentives.models import RevenuePool, Statement
from valuation.models import ParticipantScore, ValuationRun


def pool_contributions(*, runs: list[ValuationRun], per_round: bool = True, volume: bool = True) -> dict[str, dict]:
    """Per participant slug, over the runs: the summed value, its standard error (the runs'
    errors are independent), the values per run and round (left empty with ``per_round``
    false, for callers that only split an amount), the methods, and the examples its
    updates were trained on in the valued rounds (0 with ``volume`` false: reading them
    means reading every run's pinned inputs, which a split without a volume blend skips)."""
    rows: dict[str, dict] = defaultdict(lambda: {"value": 0.0, "variance": 0.0, "per_round": {}, "volume": 0})
    methods = {run.pk: run.details.get("rounds", []) for run in runs}
    scores = ParticipantScore.objects.filter(valuation_run__in=runs).select_related("participant")
    for score in scores if per_round else scores.defer("per_round"):
        row = rows[score.participant.slug]
        row["value"] += score.value
        row["variance"] += score.stderr**2
        for t, value in (score.per_round.items() if per_round else ()):
            row["per_round"][f"{score.valuation_run_id}:{t}"] = value
    for run in runs if volume else ():
        for round_inputs in run.inputs:
            for slug, _, count in round_inputs["updates"]:
                if slug in rows:
                    rows[slug]["volume"] += int(count)
    described = sorted({f"{r['method']}" for rounds in methods.values() for r in rounds})
    return {
        slug: {"value": row["value"], "stderr": math.sqrt(row["variance"]), "per_round": row["per_round"],
               "volume": row["volume"], "methods": described}
        for slug, row in sorted(rows.items())
    }


def carried_balances(*, pool: RevenuePool) -> dict[str, Decimal]:
    """Per participant slug: what earlier issued pools of the consortium, in the pool's
    currency, carried forward and no later pool has paid out yet (non-zero only)."""
    issued = Statement.objects.filter(
        pool__consortium=pool.consortium, pool__currency=pool.currency, status=Statement.Status.ISSUED,
    ).exclude(pool=pool)
    totals = issued.values("participant__slug").annotate(out=Sum("carried_out"), into=Sum("carried_in"))
    balances = {row["participant__slug"]: Decimal(row["out"] or 0) - Decimal(row["into"] or 0) for row in totals}
    return {slug: amount for slug, amount in sorted(balances.items()) if amount}
