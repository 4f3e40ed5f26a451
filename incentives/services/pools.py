"""Revenue pools up to their approval: open one, change it while a draft, draft its
statements, approve them (four eyes).

Each function is one user action in one transaction that locks the pool's row first (the
ledger head, where a step appends, after it: docs/ledger.md). Issuing and payments are in
:mod:`incentives.services.issuing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from django.db import IntegrityError, transaction
from django.utils import timezone

from consortium.access import Principal
from consortium.audit import audit_record
from consortium.models import Consortium
from core.errors import Conflict, InvalidInput, NotAllowed
from incentives.models import AllocationPolicy, PoolApproval, RevenuePool, Statement
from incentives.policy import split_pool
from incentives.selectors import carried_balances, pool_contributions
from incentives.services.money import amount_checked, currency_checked
from incentives.services.policies import policy_current, policy_terms
from ledger.currencies import minor_unit
from valuation.models import ValuationRun
from valuation.services.valuation_work import Z95

__all__ = ["APPROVALS_NEEDED", "pool_approve", "pool_create", "pool_locked", "pool_statements_draft", "pool_update"]

APPROVALS_NEEDED = 2


def pool_create(
    *, actor: Principal, consortium: Consortium, reference: str, period: str, amount, currency: str,
    valuation_runs: Iterable, policy: AllocationPolicy | None = None,
) -> RevenuePool:
    """Open a draft pool; InvalidInput naming the field, nothing written, on bad input."""
    currency = currency_checked(currency)
    amount = amount_checked(amount, currency)
    runs = _runs(consortium, valuation_runs)
    with transaction.atomic():
        policy = policy or policy_current(consortium=consortium, actor=actor)
        _check_policy(consortium, policy)
        try:
            with transaction.atomic():
                pool = RevenuePool.objects.create(
                    consortium=consortium, reference=reference, period=period, amount=amount, currency=currency,
                    policy=policy, created_by=actor.stored_user,
                )
        except IntegrityError:
            raise InvalidInput(f"The consortium already has a pool named {reference!r}.", field="reference") from None
        pool.valuation_runs.set(runs)
        audit_record(actor=actor, action="revenue_pool.created", consortium=consortium, target=pool,
                     data={"reference": reference, "amount": str(amount), "currency": currency,
                           "valuation_runs": [str(run.pk) for run in runs], "policy_version": policy.version})
    return pool


def pool_update(*, actor: Principal, pool: RevenuePool, **changes) -> RevenuePool:
    """Change a pool that is not approved yet (period, amount, currency, valuation runs,
    policy); drafted statements and approvals are dropped: they must be drafted again."""
    with transaction.atomic():
        pool = pool_locked(pool)
        if not pool.is_editable:
            raise Conflict(f"The pool is {pool.get_status_display().lower()}: it can no longer be changed.")
        if "currency" in changes:
            pool.currency = currency_checked(changes["currency"])
        if "amount" in changes or "currency" in changes:
            pool.amount = amount_checked(changes.get("amount", pool.amount), pool.currency)
        if "period" in changes:
            pool.period = changes["period"]
        if changes.get("policy") is not None:
            _check_policy(pool.consortium, changes["policy"])
            pool.policy = changes["policy"]
        if "valuation_runs" in changes:
            pool.valuation_runs.set(_runs(pool.consortium, changes["valuation_runs"]))
        _back_to_draft(pool)
        pool.save()
        audit_record(actor=actor, action="revenue_pool.updated", consortium=pool.consortium, target=pool,
                     data={name: str(value) for name, value in changes.items() if name != "valuation_runs"})
    return pool


def pool_statements_draft(*, actor: Principal, pool: RevenuePool) -> RevenuePool:
    """Compute every participant's statement from the pool's runs and policy (replacing an
    earlier draft and its approvals); the drafting user may not approve them."""
    with transaction.atomic():
        pool = pool_locked(pool)
        if not pool.is_editable:
            raise Conflict(f"The pool is {pool.get_status_display().lower()}: its statements are final.")
        runs = list(pool.valuation_runs.all())
        _check_runs_succeeded(runs)
        contributions = pool_contributions(runs=runs)
        carried = carried_balances(pool=pool)
        for slug in carried:  # owed from an earlier period though absent from this one
            contributions.setdefault(slug, {"value": 0.0, "stderr": 0.0, "per_round": {}, "volume": 0, "methods": []})
        try:
            split = split_pool(
                total=pool.amount, quantum=Decimal(1).scaleb(-minor_unit(pool.currency)),
                contributions={slug: row["value"] for slug, row in contributions.items()},
                volumes={slug: row["volume"] for slug, row in contributions.items()},
                terms=policy_terms(pool.policy), carried_in=carried,
            )
        except ValueError as exc:  # the policy cannot be met by these figures (e.g. an infeasible floor)
            raise InvalidInput(f"The policy cannot split this pool: {exc}", field="policy") from None
        _back_to_draft(pool)
        participants = {p.slug: p for p in pool.consortium.participants.filter(slug__in=list(contributions))}
        Statement.objects.bulk_create(
            _statement(pool, participants[slug], row, split, carried) for slug, row in contributions.items()
        )
        pool.status, pool.reserve_amount = RevenuePool.Status.DRAFTED, split.reserve
        pool.drafted_at, pool.drafted_by = timezone.now(), actor.stored_user
        pool.save(update_fields=["status", "reserve_amount", "drafted_at", "drafted_by"])
        audit_record(actor=actor, action="revenue_pool.drafted", consortium=pool.consortium, target=pool,
                     data={"statements": len(contributions), "reserve": str(split.reserve)})
    return pool


def pool_approve(*, actor: Principal, pool: RevenuePool) -> RevenuePool:
    """One finance user's approval of the drafted statements; the second one makes the pool
    ``approved``. Refused: a machine key, the user who drafted them, a second approval by
    the same user, a pool not drafted or already approved."""
    user = actor.stored_user
    if user is None:
        raise NotAllowed("Approving takes a person: an API key cannot approve a pool.")
    with transaction.atomic():
        pool = pool_locked(pool)
        if pool.status == RevenuePool.Status.DRAFT:
            raise Conflict("Draft the pool's statements before approving them.")
        if pool.status != RevenuePool.Status.DRAFTED:
            raise Conflict(f"The pool is already {pool.get_status_display().lower()}.")
        if pool.drafted_by_id == user.pk:
            raise NotAllowed("Four eyes: you drafted these statements, so two other finance users approve them.")
        if pool.approvals.filter(user=user).exists():
            raise Conflict("You have already approved this pool; a second finance user approves it.")
        PoolApproval.objects.create(pool=pool, user=user)
        if pool.approvals.count() >= APPROVALS_NEEDED:
            pool.status = RevenuePool.Status.APPROVED
            pool.save(update_fields=["status"])
        audit_record(actor=actor, action="revenue_pool.approved", consortium=pool.consortium, target=pool,
                     data={"approvals": pool.approvals.count()})
    return pool


def pool_locked(pool: RevenuePool) -> RevenuePool:
    """The pool's row, locked until the transaction ends (taken before the ledger head)."""
    return RevenuePool.objects.select_for_update().select_related("consortium", "policy").get(pk=pool.pk)


# -- checks ----------------------------------------------------------------------------


def _runs(consortium: Consortium, run_ids: Iterable) -> list[ValuationRun]:
    wanted = [str(run_id) for run_id in run_ids]
    if not wanted:
        raise InvalidInput("A pool rests on at least one succeeded valuation run.", field="valuation_runs")
    runs = {str(run.pk): run for run in ValuationRun.objects.filter(consortium=consortium, pk__in=_uuids(wanted))}
    missing = [run_id for run_id in wanted if run_id not in runs]
    if missing:
        raise InvalidInput(f"No valuation run {missing[0]} in this consortium.", field="valuation_runs")
    chosen = [runs[run_id] for run_id in dict.fromkeys(wanted)]
    _check_runs_succeeded(chosen)
    return chosen


def _uuids(values: list[str]) -> list[str]:
    valid = []
    for value in values:
        try:
            valid.append(str(uuid.UUID(value)))
        except ValueError:
            raise InvalidInput(f"{value!r} is not a valuation run id.", field="valuation_runs") from None
    return valid


def _check_runs_succeeded(runs: list[ValuationRun]) -> None:
    for run in runs:
        if run.status != ValuationRun.Status.SUCCEEDED:
            raise InvalidInput(f"Valuation run {run.pk} is {run.status}: a pool rests on succeeded runs only.",
                               field="valuation_runs")


def _check_policy(consortium: Consortium, policy: AllocationPolicy) -> None:
    if policy.consortium_id != consortium.pk:
        raise InvalidInput("No such policy version in this consortium.", field="policy")


def _back_to_draft(pool: RevenuePool) -> None:
    pool.statements.filter(status=Statement.Status.DRAFT).delete()
    pool.approvals.all().delete()
    pool.status, pool.reserve_amount, pool.drafted_at, pool.drafted_by = RevenuePool.Status.DRAFT, None, None, None


def _statement(pool: RevenuePool, participant, row: dict, split, carried: dict[str, Decimal]) -> Statement:
    slug = participant.slug
    share = split.shares.get(slug, Fraction(0))
    carried_in, carried_out = carried.get(slug, Decimal(0)), split.carried_out.get(slug, Decimal(0))
    payout = split.payouts.get(slug, Decimal(0))
    value, stderr = row["value"], row["stderr"]
    return Statement(
        pool=pool, participant=participant, amount=payout, allocated=payout + carried_out - carried_in,
        carried_in=carried_in, carried_out=carried_out, share=f"{share.numerator}/{share.denominator}",
        contribution=value, contribution_stderr=stderr, ci_low=value - Z95 * stderr, ci_high=value + Z95 * stderr,
        methods=row["methods"], per_round=row["per_round"], data_volume=row["volume"],
    )
