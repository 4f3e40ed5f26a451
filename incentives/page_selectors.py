"""Reads for the settlement pages: the statement list and the dispute queue with their filters,
the lines of a statement its participant may still dispute, the shares beside a
re-valuation's comparison, and the amount a re-valuation implies for the disputed statement.

Scope always comes from the access helpers (``statements_visible``, ``disputes_visible``);
every function here reads a fixed number of queries, whatever the length of the list.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from consortium.access import Capability, Principal
from consortium.models import Consortium
from incentives.access import statements_visible
from incentives.dispute_selectors import disputes_visible
from incentives.models import Dispute, RevenuePool, Statement
from incentives.policy import split_pool
from incentives.selectors import pool_contributions
from incentives.services.policies import policy_terms
from ledger.currencies import minor_unit
from valuation.models import ValuationRun

UNDECIDED = "undecided"
# What a row of the statement list and its CSV show.
LISTED_COLUMNS = ("id", "version", "supersedes_id", "status", "amount", "issued_at", "pool__reference", "pool__period",
                  "pool__currency", "participant__slug", "participant__name", "superseded_by__version")


def statements_in(*, principal: Principal, consortium: Consortium):
    """The consortium's statements the caller may read: the list and its pool filter both
    start from these (``statements_visible`` reads the caller's consortia: once)."""
    return statements_visible(principal).filter(pool__consortium=consortium)


def statements_listed(*, statements, pool: str | None = None, participant: str | None = None,
                      status: str | None = None, version: int | None = None):
    """``statements`` (from ``statements_in``) newest pool first, filtered by pool reference,
    participant slug, status and version; with what a row shows, not the per-round figures."""
    rows = (statements.select_related(None).select_related("pool", "participant", "superseded_by")
            .only(*LISTED_COLUMNS))
    if pool:
        rows = rows.filter(pool__reference=pool)
    if participant:
        rows = rows.filter(participant__slug=participant)
    if status:
        rows = rows.filter(status=status)
    if version:
        rows = rows.filter(version=version)
    return rows.order_by("-pool__created_at", "pool__reference", "participant__slug", "version")


def statement_pools(*, statements):
    """The pools of ``statements`` (the pool filter's choices)."""
    return RevenuePool.objects.filter(pk__in=statements.values("pool")).order_by("-created_at", "reference")


def is_overdue(dispute: Dispute) -> bool:
    """Undecided after its response deadline (as the API's ``overdue``)."""
    return dispute.status != Dispute.Status.DECIDED and timezone.localdate() > dispute.response_deadline


def dispute_queue(*, principal: Principal, consortium: Consortium, status: str | None = None):
    """The consortium's disputes the caller may see: undecided ones first, each group by
    response deadline (the most urgent on top); ``status`` is a state or ``undecided``."""
    # The queue shows the statement, its pool and the participant: not the runs, users and
    # revised statement that ``disputes_visible`` also joins for a dispute's page.
    disputes = (disputes_visible(principal).filter(statement__pool__consortium=consortium).select_related(None)
                .select_related("statement__pool", "participant")
                .defer(*(f"statement__{name}" for name in Statement.HEAVY_FIELDS)))
    if status == UNDECIDED:
        disputes = disputes.exclude(status=Dispute.Status.DECIDED)
    elif status:
        disputes = disputes.filter(status=status)
    decided_last = Case(When(status=Dispute.Status.DECIDED, then=Value(1)), default=Value(0),
                        output_field=IntegerField())
    return disputes.annotate(decided_last=decided_last).order_by("decided_last", "response_deadline", "created_at",
                                                                 "id")


def statement_dispute_lines(*, principal: Principal, statement: Statement) -> dict[str, Dispute | None]:
    """Line → the caller's undecided dispute on it (None: the line may be disputed), for a
    participant user who may file on this issued, current statement of its own organisation;
    empty for everyone else."""
    consortium = statement.pool.consortium
    own = principal.own_participant(consortium)
    if (not principal.can(consortium, Capability.FILE_DISPUTES) or principal.stored_user is None or own is None
            or own.pk != statement.participant_id or statement.status != Statement.Status.ISSUED):
        return {}
    pending = {d.line: d for d in Dispute.objects.filter(statement=statement, participant=own)
               .exclude(status=Dispute.Status.DECIDED)}
    return {line: pending.get(line) for line in Dispute.Line.values}


def implied_amount(*, dispute: Dispute) -> Decimal | None:
    """The disputed statement's amount had its pool been split with the finished
    re-valuation in place of the run it redoes: same pool amount, policy version and carried
    amounts, by the same split as drafting. None before the re-valuation has succeeded or when
    the policy cannot split these figures. Governance may still decide another amount."""
    new = dispute.revaluation
    if new is None or new.status != ValuationRun.Status.SUCCEEDED or dispute.revalued_run_id is None:
        return None
    pool = dispute.statement.pool
    terms = policy_terms(pool.policy)
    blends = terms.blend_alpha != 1  # only a blend with data volume reads the runs' pinned inputs
    others = pool.valuation_runs.exclude(pk=dispute.revalued_run_id)
    runs = [*(others if blends else others.defer("inputs")), new]
    contributions = pool_contributions(runs=runs, per_round=False, volume=blends)  # no per-round figure needed
    carried = dict(pool.statements.filter(status=Statement.Status.ISSUED).exclude(carried_in=0)
                   .values_list("participant__slug", "carried_in"))
    for slug in carried:
        contributions.setdefault(slug, {"value": 0.0, "volume": 0})
    try:
        split = split_pool(total=pool.amount, quantum=Decimal(1).scaleb(-minor_unit(pool.currency)),
                           contributions={slug: row["value"] for slug, row in contributions.items()},
                           volumes={slug: row["volume"] for slug, row in contributions.items()},
                           terms=terms, carried_in=carried)
    except ValueError:
        return None
    return split.payouts.get(dispute.participant.slug, Decimal(0))
