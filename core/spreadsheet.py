"""CSV downloads that a spreadsheet program opens as data, never as formulas."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.http import HttpResponse

# Spreadsheet programs run a cell that starts with one of these as a formula.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: str) -> str:
    """A text cell that a spreadsheet program shows as text, never runs as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_text(*, header: list[str], rows: Iterable[Iterable[object]]) -> str:
    """Rows as CSV; text cells are made formula-safe, numbers are written as they are."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spreadsheet_text(str(cell)) for cell in header])
    for row in rows:
        writer.writerow(["" if cell is None else cell if isinstance(cell, int | float) else spreadsheet_text(str(cell))
                         for cell in row])
    return buffer.getvalue()


def csv_download(*, filename: str, header: list[str], rows: Iterable[Iterable[object]]) -> HttpResponse:
    """A CSV attachment; ``filename`` must already be safe in a Content-Disposition header."""
    response = HttpResponse(csv_text(header=header, rows=rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
