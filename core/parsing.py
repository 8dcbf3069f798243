"""Reading messy CSV files and typing their values. Pure Python: no Django here.

Files come from spreadsheets and other systems: a byte-order mark, Windows-1252 text,
semicolons instead of commas, quoted values with newlines in them. This module turns a
file into (line number, {column: text}) records and says clearly what is wrong with a value.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
TRUE_WORDS = {"true", "yes", "1", "t", "y"}
FALSE_WORDS = {"false", "no", "0", "f", "n"}
INTEGER_RE = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
NUMBER_RE = re.compile(r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")  # no leading zeros: "01234" is a code
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class FileError(Exception):
    """The file as a whole cannot be read (nothing is imported)."""


class ValueProblem(Exception):
    """One value is wrong; the row is rejected with this message."""


@dataclass
class CsvSource:
    stream: IO[str]
    raw: IO[bytes]
    encoding: str
    delimiter: str
    size: int


def detect_encoding(path: Path) -> str:
    """utf-8-sig for a BOM, utf-8 when every byte decodes, else cp1252.

    The whole file is checked in 1 MiB steps (memory stays flat): a single é written by
    Excel on line 900,000 would otherwise fail the import half-way.
    """
    with open(path, "rb") as fh:
        head = fh.read(3)
        if head == codecs.BOM_UTF8:
            return "utf-8-sig"
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := fh.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def sniff_delimiter(sample: str) -> str:
    first_line = sample.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on one-column files and odd quoting: fall back to the
        # delimiter that splits the header most.
        counts = {d: first_line.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def open_csv(path: Path) -> CsvSource:
    if not path.is_file():
        raise FileError(f"{path}: no such file")
    encoding = detect_encoding(path)
    raw = open(path, "rb")
    stream = io.TextIOWrapper(raw, encoding=encoding, newline="")
    sample = stream.read(SNIFF_BYTES)
    stream.seek(0)
    if not sample.strip():
        raw.close()
        raise FileError(f"{path}: the file is empty")
    return CsvSource(stream, raw, encoding, sniff_delimiter(sample), path.stat().st_size)


def read_records(stream: IO[str], delimiter: str) -> tuple[list[str], Iterator[tuple[int, dict | str]]]:
    """The header and an iterator of (line number of the record's first line, record).

    A record with the wrong number of fields comes back as a string saying so, for the
    caller to reject with its line number.
    """
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileError("the file has no header line") from None
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise FileError(f"the header repeats column(s) {', '.join(dupes)}")

    def records() -> Iterator[tuple[int, dict | str]]:
        line = reader.line_num + 1
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                if len(fields) != len(header):
                    yield line, f"has {len(fields)} fields, the header has {len(header)}"
                else:
                    yield line, dict(zip(header, fields))
            line = reader.line_num + 1

    return header, records()


# --- Values ------------------------------------------------------------------------------


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueProblem(f"{text!r} is not a boolean (use true/false, yes/no, 1/0)")


def parse_decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueProblem(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueProblem(f"{text!r} is not a finite number")
    return value


def parse_number(text: str) -> int | float:
    stripped = text.strip()
    if INTEGER_RE.match(stripped):
        return int(stripped)
    if NUMBER_RE.match(stripped):
        return float(stripped)
    raise ValueProblem(f"{text!r} is not a number")


def parse_integer(text: str) -> int:
    stripped = text.strip()
    if INTEGER_RE.match(stripped):
        return int(stripped)
    raise ValueProblem(f"{text!r} is not a whole number")


def parse_date(text: str) -> date:
    stripped = text.strip()
    try:
        if len(stripped) > 10:
            return datetime.fromisoformat(stripped.replace("Z", "+00:00")).date()
        return date.fromisoformat(stripped)
    except ValueError:
        raise ValueProblem(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def parse_datetime(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC, a bare date as midnight UTC."""
    stripped = text.strip()
    try:
        value = datetime.fromisoformat(stripped.replace("Z", "+00:00"))
    except ValueError:
        raise ValueProblem(f"{text!r} is not a date and time (use ISO 8601, e.g. 2024-05-01T13:45:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def parse_email(text: str) -> str:
    stripped = text.strip()
    if not EMAIL_RE.match(stripped):
        raise ValueProblem(f"{text!r} is not an email address")
    return stripped


# Attribute types, in the order inference tries them.
ATTRIBUTE_PARSERS = {
    "boolean": parse_bool,
    "integer": parse_integer,
    "number": parse_number,
    "date": lambda text: parse_date(text).isoformat(),
    "text": lambda text: text,
}


def infer_type(values: Iterable[str]) -> str:
    """The narrowest attribute type that every non-blank sample value fits."""
    sample = [v.strip() for v in values if v.strip()]
    if not sample:
        return "text"
    words = {v.lower() for v in sample}
    if words <= TRUE_WORDS | FALSE_WORDS and not words <= {"t", "f", "y", "n"}:
        return "boolean"
    if all(INTEGER_RE.match(v) for v in sample):
        return "integer"
    if all(NUMBER_RE.match(v) for v in sample):
        return "number"
    if all(DATE_RE.match(v) for v in sample):
        try:
            for v in sample:
                date.fromisoformat(v)
            return "date"
        except ValueError:
            pass
    return "text"


def parse_attribute(kind: str, text: str):
    """A JSON-ready value for an attribute of the given type; blank is None."""
    if not text.strip():
        return None
    return ATTRIBUTE_PARSERS[kind](text)
