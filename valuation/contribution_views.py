"""A participant's contribution over time, with its uncertainty.

One point per succeeded valuation run (value and 95 % interval), the per-round breakdown of
the latest run, and the latest run's participants exactly as the API's selector
(``valuation_run_scores``) shows them to the caller: a participant user always its own
figures, and the others' ranks or figures only where the consortium's transparency setting
publishes them. Staff pick any participant (``?participant=<slug>``). Reads take a fixed
number of queries whatever the number of runs or participants.
"""

from __future__ import annotations

from copy import copy

from django import forms
from django.contrib.auth.decorators import login_required

from consortium.access import Capability, consortium_get, participant_get, principal_for, require, visible_participants
from core.charts import band_chart, bar_chart
from core.listing import Column, Table, filter_form, table_csv, table_response
from core.templatetags.figures import figure, percent
from valuation.forms import PlainSelect
from valuation.models import ParticipantScore, ValuationRun
from valuation.page_selectors import VisibleScores
from valuation.selectors import valuation_run_scores

TEMPLATE = "valuation/contributions.html"
SERIES_COLUMNS = ["Valuation run", "Value", "Standard error", "95 % low", "95 % high"]
ROUND_COLUMNS = ["Round", "Value"]


class ParticipantChoice(forms.Form):
    """Staff's participant selector (a participant user sees only its own organisation)."""

    participant = forms.ChoiceField(label="Participant", required=False, widget=PlainSelect)

    def __init__(self, *args, participants=(), **kwargs):
        """``participants``: (slug, name) pairs."""
        super().__init__(*args, **kwargs)
        self.fields["participant"].choices = [(slug, f"{name} ({slug})") for slug, name in participants]


@login_required
def contributions_page(request, slug):
    principal = principal_for(request)
    consortium = consortium_get(principal, slug)
    require(principal, consortium, Capability.VIEW_VALUATIONS)
    chooser, participant = _participant(request, principal, consortium)
    scores = _scores(consortium, participant)
    latest = scores[-1].valuation_run if scores else None
    # The latest run's participants a page at a time (the CSV: all), as the API shows them.
    everyone = VisibleScores(principal=principal, valuation_run=latest) if latest else []
    mine = _row_of(principal, scores[-1]) if scores else None
    wanted = request.GET.get("list")
    if request.GET.get("format") == "csv" and wanted in ("series", "rounds"):
        name = f"contribution-{wanted}-{slug}-{participant.slug if participant else 'none'}"
        if wanted == "series":
            return table_csv(_csv_table(SERIES_COLUMNS, _series_rows(scores), name))
        return table_csv(_csv_table(ROUND_COLUMNS, _round_rows(scores[-1] if scores else None), name))
    series, rounds = _series_chart(scores), _rounds_chart(scores[-1] if scores else None)
    context = {"consortium": consortium, "role": principal.role_in(consortium), "participant": participant,
               "filters": chooser, "latest": latest, "mine": mine, "series": series, "rounds": rounds,
               "transparency": consortium.get_transparency_display(),
               "is_staff": principal.can(consortium, Capability.VIEW_ALL)}
    columns = _everyone_columns() if request.GET.get("format") == "csv" else _everyone_screen_columns()
    table = Table(columns=columns, rows=everyone, caption="Participants in the latest valuation run",
                  filename=f"contributions-latest-{slug}", empty="Nothing to show of the other participants.")
    return table_response(request, table=table, template=TEMPLATE, context=context)


def _participant(request, principal, consortium):
    """The participant shown and, for staff, the bound selector form (default: the first)."""
    if not principal.can(consortium, Capability.VIEW_ALL):
        own = principal.own_participant(consortium)
        wanted = request.GET.get("participant") or (own.slug if own else "")
        return None, participant_get(principal, consortium, wanted)  # another participant's slug: 404
    participants = list(visible_participants(principal, consortium).order_by("slug").values_list("slug", "name"))
    chooser = filter_form(_chooser_class(participants), request)
    chosen = (chooser.cleaned_data.get("participant") if chooser.is_bound else None) or (
        participants[0][0] if participants else None)
    return chooser, participant_get(principal, consortium, chosen) if chosen else None


def _chooser_class(participants):
    class Chooser(ParticipantChoice):
        def __init__(self, data=None):
            super().__init__(data, participants=participants)

    return Chooser


def _scores(consortium, participant) -> list[ParticipantScore]:
    """The participant's score in each succeeded run of the consortium (whose valuations the
    caller may read: ``require`` above) it was valued in, oldest first (one query)."""
    if participant is None:
        return []
    return list(
        ParticipantScore.objects
        .filter(participant=participant, valuation_run__consortium=consortium,
                valuation_run__status=ValuationRun.Status.SUCCEEDED)
        .select_related("participant", "valuation_run__training_run", "valuation_run__consortium")
        .defer(*(f"valuation_run__{name}" for name in ValuationRun.HEAVY_FIELDS))
        .order_by("valuation_run__finished_at", "valuation_run__created_at", "valuation_run__id")
    )


def _row_of(principal, score: ParticipantScore) -> dict | None:
    """The participant's row of its latest run as ``valuation_run_scores`` shows it to the caller."""
    run = copy(score.valuation_run)
    run.ranked_scores = [score]  # the selector's prefetch: this one row
    return next(iter(valuation_run_scores(principal=principal, valuation_run=run)), None)


def _run_label(run: ValuationRun) -> str:
    when = run.finished_at or run.created_at
    return f"{when:%Y-%m-%d %H:%M} · {run.training_run.name}"


def _series_rows(scores: list[ParticipantScore]) -> list[list]:
    return [[_run_label(s.valuation_run), s.value, s.stderr, s.ci_low, s.ci_high] for s in scores]


def _round_rows(score: ParticipantScore | None) -> list[list]:
    if score is None:
        return []
    rows = [[t, float(v)] for t, v in score.per_round.items()]
    return sorted(rows, key=lambda row: (0, int(row[0])) if row[0].isdigit() else (1, row[0]))


def _text(rows: list[list]) -> list[list[str]]:
    """Exact figures for the chart's table: floats as their shortest round-trip text."""
    return [[cell if isinstance(cell, str) else repr(cell) for cell in row] for row in rows]


def _series_chart(scores: list[ParticipantScore]):
    rows = _series_rows(scores)
    if not rows:
        return None
    return band_chart(
        id="contribution-over-time", title="Contribution per valuation run, with its 95 % interval",
        labels=[row[0] for row in rows], values=[row[1] for row in rows], lows=[row[3] for row in rows],
        highs=[row[4] for row in rows], y_title="contribution", columns=SERIES_COLUMNS, rows=_text(rows),
    )


def _rounds_chart(score: ParticipantScore | None):
    rows = _round_rows(score)
    if not rows:
        return None
    return bar_chart(
        id="contribution-per-round", title=f"Contribution per round in the latest run ({_run_label(score.valuation_run)})",
        labels=[f"Round {row[0]}" for row in rows], datasets={"contribution": [row[1] for row in rows]},
        y_title="contribution", columns=ROUND_COLUMNS, rows=_text(rows),
    )


def _csv_table(columns: list[str], rows: list[list], filename: str) -> Table:
    """A chart's numbers as a CSV download: numbers stay numbers (never formula-escaped)."""
    return Table(columns=[Column(name, lambda row, i=i: row[i]) for i, name in enumerate(columns)], rows=rows,
                 caption="", filename=filename)


def _figure(name: str):
    """A figure of a score row; None (an empty cell) where the caller is not shown it."""
    return lambda row: row.get(name)


def _everyone_columns() -> list[Column]:
    """What ``valuation_run_scores`` gives, exact (the CSV): every figure, or (ranks setting)
    only the rank."""
    return [
        Column("Participant", lambda row: row["participant"]),
        Column("Rank", lambda row: row.get("rank"), numeric=True),
        Column("Value", _figure("value"), numeric=True),
        Column("Standard error", _figure("stderr"), numeric=True),
        Column("95 % low", _figure("ci_low"), numeric=True),
        Column("95 % high", _figure("ci_high"), numeric=True),
        Column("Share", _figure("share"), numeric=True),
    ]


def _everyone_screen_columns() -> list[Column]:
    """The same for reading: six significant digits, the interval in one cell, the share
    in percent (the CSV keeps every exact figure)."""

    def interval(row) -> str:
        return f"[{figure(row['ci_low'])}, {figure(row['ci_high'])}]" if "ci_low" in row else ""

    return [
        Column("Participant", lambda row: row["participant"]),
        Column("Rank", lambda row: row.get("rank"), numeric=True),
        Column("Value", lambda row: figure(row.get("value")), numeric=True),
        Column("Standard error", lambda row: figure(row.get("stderr")), numeric=True),
        Column("95 % interval", interval, numeric=True),
        Column("Share", lambda row: percent(row.get("share")), numeric=True),
    ]
