"""What the dispute page shows: the disputed line with its figure, the deadline, the trail,
the re-valuation's status and, once it has succeeded, the old and new figures side by side
(from ``dispute_comparison``, so a participant sees only what the API shows it) with a chart
of the two intervals, and both lists as CSV. A fixed number of queries whatever the number
of participants."""

from __future__ import annotations

from decimal import Decimal

from consortium.access import Capability, Principal
from consortium.models import Consortium
from core.charts import interval_chart
from core.listing import Column, Table
from core.templatetags.figures import figure, percent
from incentives.dispute_figures import dispute_comparison_kept
from incentives.documents import share_decimal
from incentives.models import Dispute
from incentives.page_selectors import is_overdue
from ledger.currencies import money_text

CHART_MAX_ROWS = 20  # more participants than this: the chart shows the disputing one only
ACTION_LABELS = {"filed": "Filed", "reviewed": "Taken under review", "revaluation_ordered": "Re-valuation ordered",
                 "decided": "Decided"}


def dispute_context(*, principal: Principal, consortium: Consortium, dispute: Dispute, forms: dict,
                    implied: Decimal | None = None) -> dict:
    currency = dispute.statement.pool.currency
    events = [{"event": e, "label": ACTION_LABELS.get(e.action, e.action), "details": _details(e, currency)}
              for e in dispute.events.all()]
    comparison = (dispute_comparison_kept(principal=principal, consortium=consortium, dispute=dispute)
                  if dispute.revaluation_id else None)
    rows = _comparison_rows(comparison, dispute) if comparison else []
    return {
        "consortium": consortium, "role": principal.role_in(consortium), "dispute": dispute,
        "statement": dispute.statement, "overdue": is_overdue(dispute), "line_figure": line_figure(dispute),
        "events": events, "revaluation": revaluation_status(dispute), "comparison": comparison,
        "comparison_rows": rows, "comparison_chart": _chart(rows, dispute),
        "comparison_table": _table(COMPARISON_COLUMNS, rows, f"dispute-{dispute.pk}-comparison",
                                   "Old and new figures"),
        "trail_table": _table(TRAIL_COLUMNS, events, f"dispute-{dispute.pk}-trail", "Trail"),
        "implied": None if implied is None else money_text(implied, currency), "currency": currency,
        "adjustment": None if dispute.adjustment is None else money_text(dispute.adjustment, currency),
        "statement_amount": money_text(dispute.statement.amount, currency),
        "revised_amount": (money_text(dispute.revised_statement.amount, currency)
                           if dispute.revised_statement_id else None),
        "forms": forms, "can_resolve": principal.can(consortium, Capability.RESOLVE_DISPUTES),
    }


def line_figure(dispute: Dispute) -> str:
    """The disputed statement's figure on the disputed line, as its documents write it."""
    statement = dispute.statement
    if dispute.line == Dispute.Line.AMOUNT:
        return f"{money_text(statement.amount, statement.pool.currency)} {statement.pool.currency}"
    if dispute.line == Dispute.Line.CONTRIBUTION:
        return (f"{statement.contribution!r} ± {statement.contribution_stderr!r}, 95 % interval "
                f"[{statement.ci_low!r}, {statement.ci_high!r}]")
    if dispute.line == Dispute.Line.SHARE:
        return f"{share_decimal(statement.share)} (exactly {statement.share})"
    return f"{statement.data_volume} examples"


def revaluation_status(dispute: Dispute) -> dict | None:
    run = dispute.revaluation
    if run is None:
        return None
    return {"run": run, "finished": run.is_finished, "succeeded": run.status == run.Status.SUCCEEDED,
            "done": run.progress_done, "total": run.progress_total or None}


def _details(event, currency: str) -> str:
    data = event.data or {}
    parts = []
    if event.action == "filed":
        parts.append(f"line {data.get('line')}, statement version {data.get('statement_version')}")
    elif event.action == "revaluation_ordered":
        parts.append(f"method {data.get('method')}" + (f", budget {data['budget']}" if data.get("budget") else "")
                     + f", seed {data.get('seed')}")
    elif event.action == "decided":
        parts.append(str(data.get("outcome")))
        if data.get("adjustment") is not None:
            parts.append(f"adjustment {data['adjustment']} {currency}")
    if data.get("note"):
        parts.append(data["note"])
    return "; ".join(parts)


def _comparison_rows(comparison: dict, dispute: Dispute) -> list[dict]:
    rows = []
    for row in comparison["rows"]:
        rows.append({**row, "old_share": _side(row, "old", "share"), "new_share": _side(row, "new", "share"),
                     "disputing": row["participant"] == dispute.participant.slug})
    return sorted(rows, key=lambda row: not row["disputing"])  # stable: the others stay by slug


def comparison_texts(row: dict) -> dict:
    """A comparison row with its cells written for reading (``texts``), done in Python for
    the page's rows: fifty rows of nine formatted cells cost more through template filters."""
    def interval(side: str) -> str:
        figures = row[side]
        return "" if figures is None else f"[{figure(figures['ci_low'])}, {figure(figures['ci_high'])}]"

    texts = {f"{side}_{name}": figure(_side(row, side, name)) for side in ("old", "new") for name in ("value",)}
    texts.update(old_interval=interval("old"), new_interval=interval("new"), old_share=percent(row["old_share"]),
                 new_share=percent(row["new_share"]), difference=figure(row["difference"]))
    return {**row, "texts": texts}


def _side(row: dict, side: str, name: str):
    figures = row[side]
    return None if figures is None else figures[name]


COMPARISON_COLUMNS = [
    Column("Participant", lambda r: r["participant"]),
    Column("Old value", lambda r: _side(r, "old", "value"), numeric=True),
    Column("Old 95 % low", lambda r: _side(r, "old", "ci_low"), numeric=True),
    Column("Old 95 % high", lambda r: _side(r, "old", "ci_high"), numeric=True),
    Column("Old share", lambda r: r["old_share"], numeric=True),
    Column("New value", lambda r: _side(r, "new", "value"), numeric=True),
    Column("New 95 % low", lambda r: _side(r, "new", "ci_low"), numeric=True),
    Column("New 95 % high", lambda r: _side(r, "new", "ci_high"), numeric=True),
    Column("New share", lambda r: r["new_share"], numeric=True),
    Column("Difference (new − old)", lambda r: r["difference"], numeric=True),
    Column("Outside the old 95 % interval", lambda r: {True: "yes", False: "no"}.get(r["outside_old_interval"], "")),
]

TRAIL_COLUMNS = [
    Column("When", lambda e: e["event"].created_at.isoformat()),
    Column("Action", lambda e: e["event"].action),
    Column("By", lambda e: e["event"].actor_label),
    Column("Details", lambda e: e["details"]),
]


def _table(columns: list[Column], rows: list, filename: str, caption: str) -> Table:
    return Table(columns=columns, rows=rows, caption=caption, filename=filename)


def _chart(rows: list[dict], dispute: Dispute):
    """Old and new value of each participant shown, with their 95 % intervals."""
    if len(rows) > CHART_MAX_ROWS:
        rows = [row for row in rows if row["disputing"]]
    points = [(f"{row['participant']} · {side}", row[side]) for row in rows for side in ("old", "new") if row[side]]
    if not points:
        return None
    return interval_chart(
        id="revaluation-comparison", title="Value before and after the re-valuation, with 95 % intervals",
        labels=[label for label, _ in points], values=[f["value"] for _, f in points],
        lows=[f["ci_low"] for _, f in points], highs=[f["ci_high"] for _, f in points], y_title="contribution",
        columns=["", "Value", "95 % low", "95 % high"],
        rows=[[label, repr(f["value"]), repr(f["ci_low"]), repr(f["ci_high"])] for label, f in points],
    )
