"""Lists on pages: one definition of the columns gives the table on screen, one page of it
at a time, and the whole (filtered) list as CSV.

A view builds a :class:`Table` over its scoped, filtered rows and returns
:func:`table_response`; ``?format=csv`` on the same URL downloads every row, so whatever a
user filtered on screen is what the spreadsheet gets. Filters live in the query string
(bookmarkable); pagination links keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.spreadsheet import csv_download

PAGE_SIZE = 50


@dataclass(frozen=True)
class Column:
    """One column: its header, the cell's value for a row, and optionally a link for the cell.

    ``value`` returns what the CSV holds (text, an int or a Decimal, written as it is);
    ``link`` returns a URL or None; ``numeric`` right-aligns the cell on screen."""

    header: str
    value: Callable[[object], object]
    link: Callable[[object], str | None] | None = None
    numeric: bool = False


@dataclass(frozen=True)
class Cell:
    text: str
    link: str | None
    numeric: bool


@dataclass
class Table:
    columns: list[Column]
    rows: Iterable  # a scoped queryset or a list; the CSV reads all of it, the page one slice
    caption: str
    filename: str  # of the CSV download, without extension; slugs only
    empty: str = "Nothing here yet."
    per_page: int = PAGE_SIZE
    page: object = field(default=None, init=False)

    def paginate(self, number) -> None:
        self.page = Paginator(self.rows, self.per_page).get_page(number)

    @property
    def headers(self) -> list[Column]:
        return self.columns

    @property
    def cells(self) -> list[list[Cell]]:
        """The current page's rows as cells."""
        return [[_cell(column, row) for column in self.columns] for row in self.page.object_list]

    @property
    def rows_html(self) -> list[str]:
        """The current page's rows as the cells' HTML, for ``partials/table.html``: written
        here in one pass (every text escaped) rather than by template tags per cell, which
        cost most of a long page's time."""
        return [format_html_join("", "{}", ((_cell_html(cell),) for cell in row)) for row in self.cells]


def _cell_html(cell: Cell) -> str:
    attributes = mark_safe(' class="num"') if cell.numeric else ""
    if cell.link:
        return format_html('<td{}><a href="{}">{}</a></td>', attributes, cell.link, cell.text)
    return format_html("<td{}>{}</td>", attributes, cell.text)


def _cell(column: Column, row) -> Cell:
    value = column.value(row)
    return Cell(text="" if value is None else str(value), link=column.link(row) if column.link else None,
                numeric=column.numeric)


def table_csv(table: Table):
    return csv_download(filename=f"{table.filename}.csv", header=[column.header for column in table.columns],
                        rows=([column.value(row) for column in table.columns] for row in table.rows))


def table_response(request, *, table: Table, template: str, context: dict, status: int = 200):
    """The page with one page of ``table``, or with ``?format=csv`` every row as CSV."""
    if request.GET.get("format") == "csv":
        return table_csv(table)
    table.paginate(request.GET.get("page"))
    return render(request, template, {**context, "table": table}, status=status)


def filter_form(form_class: type[forms.Form], request) -> forms.Form:
    """The page's filter form, bound to the query string (an empty query means no filters).

    An invalid value is shown next to its field and the list is left unfiltered by it:
    ``form.cleaned_data`` then holds only the fields that were valid."""
    form = form_class(request.GET or None)
    if form.is_bound:
        form.is_valid()
    return form


def filter_values(form: forms.Form) -> dict:
    """The valid, non-empty filters of a bound form."""
    if not form.is_bound:
        return {}
    return {name: value for name, value in form.cleaned_data.items() if value not in (None, "", [])}
