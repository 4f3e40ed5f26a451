"""Read models of the revenue-pool pages: the list, a pool's statements and their totals,
the consortium's pool summary, and which actions a user may take on a pool now. Each reads
in a fixed number of queries whatever the number of pools or statements."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, Sum

from consortium.access import Capability, Principal
from consortium.models import Consortium
from consortium.overview import OverviewSection, overview_section
from incentives.models import RevenuePool, Statement
from ledger.currencies import money_text
from valuation.models import ValuationRun

DONE = (RevenuePool.Status.ISSUED, RevenuePool.Status.PAID)
# What a row of a pool's statements and its CSV show.
POOL_STATEMENT_COLUMNS = ("id", "pool_id", "version", "status", "contribution", "share", "allocated", "carried_in",
                          "carried_out", "amount", "participant__slug")


def pools_listed(*, consortium: Consortium, filters: dict):
    """The consortium's pools, newest first, with their approvals counted."""
    pools = consortium.revenue_pools.select_related("created_by").annotate(approvals_count=Count("approvals"))
    if "status" in filters:
        pools = pools.filter(status=filters["status"])
    return pools.order_by("-created_at")


def pool_statements(*, pool: RevenuePool):
    """Every statement of the pool (each version), by participant then version; each row's
    ``pool`` is ``pool`` itself (the related manager sets it), not a copy per row."""
    return (pool.statements.select_related("participant").only(*POOL_STATEMENT_COLUMNS)
            .order_by("participant__slug", "version"))


def pool_runs(*, pool: RevenuePool):
    """The valuation runs the pool rests on, oldest first, without their heavy columns."""
    return pool.valuation_runs.select_related("training_run").defer(*ValuationRun.HEAVY_FIELDS).order_by("created_at")


def pool_people_load(*, pool: RevenuePool) -> None:
    """Loads who opened, drafted and issued the pool in one query (not one each)."""
    names = ("created_by", "drafted_by", "issued_by")
    ids = {getattr(pool, f"{name}_id") for name in names} - {None}
    users = get_user_model().objects.in_bulk(ids) if ids else {}
    for name in names:
        setattr(pool, name, users.get(getattr(pool, f"{name}_id")))


def pool_totals(*, pool: RevenuePool) -> dict:
    """Sums over the pool's current statements (not superseded), and how they reconcile with
    the pool: reserve + allocated = pool amount; amounts paid now + carried to the next
    period = allocated + carried in. ``corrections`` is what upheld disputes moved from (or
    back to) the reserve since issuing; zero otherwise."""
    sums = pool.statements.exclude(status=Statement.Status.SUPERSEDED).aggregate(
        count=Count("id"), amount=Sum("amount"), allocated=Sum("allocated"), carried_in=Sum("carried_in"),
        carried_out=Sum("carried_out"),
    )
    zero = Decimal(0)
    totals = {name: sums[name] or zero for name in ("amount", "allocated", "carried_in", "carried_out")}
    reserve = pool.reserve_amount or zero
    corrections = (totals["amount"] + totals["carried_out"] - totals["carried_in"] + reserve - pool.amount
                   if sums["count"] else zero)
    return {**totals, "count": sums["count"], "reserve": reserve, "corrections": corrections}


def pool_actions(*, principal: Principal, pool: RevenuePool, approvers: list) -> dict:
    """What the caller may do on the pool now (the services still decide): ``draft``,
    ``approve``, ``issue``, ``paid``; and ``waiting`` says why approving is not offered."""
    if not principal.can(pool.consortium, Capability.MANAGE_POOLS):
        return {"any": False}
    user = principal.stored_user
    drafted = pool.status == RevenuePool.Status.DRAFTED
    mine = user is not None and pool.drafted_by_id == user.pk
    approved_by_me = user is not None and any(approver.user_id == user.pk for approver in approvers)
    actions = {
        "draft": pool.is_editable,
        "approve": drafted and user is not None and not mine and not approved_by_me,
        "issue": pool.status == RevenuePool.Status.APPROVED,
        "paid": pool.status == RevenuePool.Status.ISSUED,
        "waiting": ("drafted" if mine else "approved") if drafted and (mine or approved_by_me) else "",
    }
    actions["any"] = any(actions[name] for name in ("draft", "approve", "issue", "paid"))
    return actions


def pools_summary(*, consortium: Consortium) -> dict:
    """The consortium's pools in one aggregate query: how many in each state, and per
    currency the amounts of the pools issued (issued or paid) and of those paid."""
    rows = (consortium.revenue_pools.order_by().values("currency", "status")
            .annotate(count=Count("id"), total=Sum("amount")))
    states = {status: 0 for status in RevenuePool.Status.values}
    currencies: dict[str, dict] = {}
    for row in rows:
        states[row["status"]] += row["count"]
        money = currencies.setdefault(row["currency"], {"issued": Decimal(0), "paid": Decimal(0)})
        if row["status"] in DONE:
            money["issued"] += row["total"]
        if row["status"] == RevenuePool.Status.PAID:
            money["paid"] += row["total"]
    return {"states": states, "total": sum(states.values()),
            "currencies": [{"currency": code, **money} for code, money in sorted(currencies.items())]}



# -- the consortium overview's sections (consortium/overview.py) ------------------------


@overview_section(order=10)
def pools_overview(*, principal: Principal, consortium: Consortium) -> OverviewSection | None:
    """Staff: the pools by state and the amounts issued and paid per currency. A participant
    user: its own latest issued statement."""
    if principal.can(consortium, Capability.VIEW_POOLS):
        summary = pools_summary(consortium=consortium)
        for row in summary["currencies"]:
            row["issued_text"] = money_text(row["issued"], row["currency"])
            row["paid_text"] = money_text(row["paid"], row["currency"])
        return OverviewSection("incentives/pool_overview.html", summary)
    own = principal.own_participant(consortium)
    if own is None or not principal.can(consortium, Capability.VIEW_STATEMENTS):
        return None
    statement = (Statement.objects.filter(participant=own, pool__consortium=consortium, status=Statement.Status.ISSUED)
                 .select_related("pool").defer(*Statement.HEAVY_FIELDS).order_by("-issued_at", "-created_at").first())
    amount = "" if statement is None else f"{money_text(statement.amount, statement.pool.currency)} {statement.pool.currency}"
    return OverviewSection("incentives/pool_overview_statement.html", {"statement": statement, "amount": amount})
