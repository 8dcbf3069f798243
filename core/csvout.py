"""Writing CSV files people open in a spreadsheet. Pure Python: no Django here.

A cell that starts with = + - @ (or a tab or carriage return) is run as a formula by
Excel, LibreOffice and Google Sheets, so a customer named `=HYPERLINK(...)` in an import's
rejects file, or a `--by` attribute value in an experiment export, would run on the
analyst's machine. OWASP's advice (CSV Injection) is followed: such a cell gets a leading
single quote, which spreadsheets show as text. Every CSV a user downloads is written here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain number such as -5 or +1.5e3 is no formula (a spreadsheet reads it as the
# number): left alone, so negative amounts stay numbers.
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def cell_safe(value: Any) -> Any:
    """The value as written: text a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer` whose cells pass through `cell_safe`."""

    def __init__(self, fh: IO[str], **fmt: Any):
        self._writer = csv.writer(fh, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([cell_safe(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """`csv.DictWriter` whose cells, the header's too, pass through `cell_safe`."""

    def __init__(self, fh: IO[str], fieldnames: Sequence[str], *, restval: Any = "", extrasaction: str = "raise",
                 **fmt: Any):
        super().__init__(fh, fieldnames, restval=restval, extrasaction=extrasaction, **fmt)
        self.writer = SafeWriter(fh, **fmt)
