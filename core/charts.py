"""Charts on pages: a Chart.js configuration built here, drawn by static/js/fairshare.js,
and always the same numbers in a table next to it (``partials/chart.html``) for screen
readers, printing and copying.

Only the configuration travels (as a JSON data block, which the Content-Security-Policy
allows); no page carries inline script. Values are floats for drawing only: the tables
show the exact figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join

ACCENT = "#0f5c8c"
BAND = "rgba(15, 92, 140, 0.18)"
INTERVAL = "rgba(15, 92, 140, 0.35)"


@dataclass(frozen=True)
class Chart:
    """What ``partials/chart.html`` draws: a canvas for ``config`` and a table of ``rows``."""

    id: str  # unique on the page; the JSON block's id is derived from it
    title: str
    config: dict
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]

    @property
    def config_id(self) -> str:
        return f"{self.id}-config"

    @property
    def rows_html(self) -> list[str]:
        """The numbers table's rows (the first cell a row header), written in one pass with
        every text escaped: a table of 50 rounds through template tags costs milliseconds."""
        return [format_html_join("", "{}", ((format_html('<th scope="row">{}</th>', row[0]),),
                                            *((format_html('<td class="num">{}</td>', cell),) for cell in row[1:])))
                for row in self.rows]


def _options(*, y_title: str, legend: bool = True) -> dict:
    return {
        "animation": False,  # screenshots and tests see the final picture at once
        "responsive": True,
        "maintainAspectRatio": False,
        "plugins": {"legend": {"display": legend}},
        "scales": {"y": {"title": {"display": bool(y_title), "text": y_title}}},
    }


def interval_chart(*, id: str, title: str, labels: Sequence[str], values: Sequence[float],
                   lows: Sequence[float], highs: Sequence[float], y_title: str = "value",
                   rows: Sequence[Sequence[str]], columns: Sequence[str]) -> Chart:
    """A point per label with its 95 % interval as a floating bar behind it."""
    config = {
        "type": "bar",
        "data": {
            "labels": list(labels),
            "datasets": [
                {"type": "line", "label": "value", "data": list(values), "showLine": False, "pointRadius": 5,
                 "pointBackgroundColor": ACCENT, "borderColor": ACCENT, "order": 0},
                {"type": "bar", "label": "95 % interval", "data": [[lo, hi] for lo, hi in zip(lows, highs, strict=True)],
                 "backgroundColor": INTERVAL, "barPercentage": 0.35, "order": 1},
            ],
        },
        "options": _options(y_title=y_title),
    }
    return Chart(id=id, title=title, config=config, columns=columns, rows=rows)


def band_chart(*, id: str, title: str, labels: Sequence[str], values: Sequence[float],
               lows: Sequence[float], highs: Sequence[float], y_title: str = "value",
               rows: Sequence[Sequence[str]], columns: Sequence[str]) -> Chart:
    """A line over ``labels`` (e.g. time) with its 95 % interval as a shaded band."""
    config = {
        "type": "line",
        "data": {
            "labels": list(labels),
            "datasets": [
                {"label": "95 % interval (low)", "data": list(lows), "borderWidth": 0, "pointRadius": 0, "fill": False},
                {"label": "95 % interval", "data": list(highs), "borderWidth": 0, "pointRadius": 0, "fill": "-1",
                 "backgroundColor": BAND},
                {"label": "value", "data": list(values), "borderColor": ACCENT, "backgroundColor": ACCENT,
                 "fill": False, "tension": 0},
            ],
        },
        "options": {**_options(y_title=y_title), "plugins": {"legend": {"display": True, "labels": {}}}},
    }
    return Chart(id=id, title=title, config=config, columns=columns, rows=rows)


def bar_chart(*, id: str, title: str, labels: Sequence[str], datasets: dict[str, Sequence[float]],
              y_title: str = "", rows: Sequence[Sequence[str]], columns: Sequence[str],
              stacked: bool = False) -> Chart:
    """Grouped (or stacked) bars: one dataset per key of ``datasets``."""
    palette = [ACCENT, "#c9792b", "#1f6b3a", "#8a3a9c", "#a12a2a", "#5b6877"]
    options = _options(y_title=y_title, legend=len(datasets) > 1)
    if stacked:
        options["scales"] = {"x": {"stacked": True}, "y": {**options["scales"]["y"], "stacked": True}}
    config = {
        "type": "bar",
        "data": {"labels": list(labels),
                 "datasets": [{"label": label, "data": list(data), "backgroundColor": palette[i % len(palette)]}
                              for i, (label, data) in enumerate(datasets.items())]},
        "options": options,
    }
    return Chart(id=id, title=title, config=config, columns=columns, rows=rows)
