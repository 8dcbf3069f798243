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
# The longest value a row may hold: csv's own default limit. Longer ones reject their row.
FIELD_LIMIT = 131_072
# The csv module's limit is raised well past FIELD_LIMIT so one long value rejects its row
# instead of stopping the reader; a value past this one refuses the file (csv cannot resume
# inside a quoted field, so the rows after it could not be trusted).
READ_LIMIT = 16 * 1024 * 1024
csv.field_size_limit(max(csv.field_size_limit(), READ_LIMIT))
BOMS = [  # UTF-32's little-endian mark begins with UTF-16's: it goes first
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
CONTROL_BYTES = bytes(range(9)) + bytes(range(14, 32))  # all below space but tab, LF, VT, FF, CR
TEXT_BYTES = bytes(b for b in range(256) if b not in CONTROL_BYTES)
SIGNATURES = [
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one too)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls (or other Office) file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"%PDF", "a PDF document"),
]
DELIMITERS = ",;\t|"
TRUE_WORDS = {"true", "yes", "1", "t", "y"}
FALSE_WORDS = {"false", "no", "0", "f", "n"}
INTEGER_RE = re.compile(r"^[+-]?(0|[1-9][0-9]*)$")
NUMBER_RE = re.compile(r"^[+-]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")  # no leading zeros: "01234" is a code
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NUMBER_LIKE_RE = re.compile(r"^[+-]?[0-9][0-9.,]*$")
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


def not_text(head: bytes) -> str | None:
    """What the start of a file shows it to be when it is not text, else None."""
    for signature, what in SIGNATURES:
        if head.startswith(signature):
            return what
    # ASCII saved as UTF-16 without a byte-order mark: every other byte is zero.
    if head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4:
        return "UTF-16 text without a byte-order mark"
    # Text holds next to no control bytes; a stray NUL in a value is left for its row's
    # rejection, while a picture or an archive has them everywhere.
    if len(head.translate(None, TEXT_BYTES)) > max(8, len(head) // 50):
        return "a binary file"
    return None


def detect_encoding(path: Path) -> str:
    """The BOM's encoding (UTF-8, UTF-16 or UTF-32), utf-8 when every byte decodes, else cp1252.

    The whole file is checked in 1 MiB steps (memory stays flat): a single é written by
    Excel on line 900,000 would otherwise fail the import half-way. A file that is no
    text at all (a workbook, an archive) is refused with what it looks like.
    """
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
        for bom, encoding in BOMS:
            if head.startswith(bom):
                return encoding
        what = not_text(head)
        if what:
            raise FileError(f"the file is {what}, not CSV text: save or export it as CSV (UTF-8)")
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
    """The file opened for `read_records`. Messages name no path: callers say which file."""
    if not path.is_file():
        raise FileError("no such file")
    encoding = detect_encoding(path)
    raw = open(path, "rb")
    stream = io.TextIOWrapper(raw, encoding=encoding, newline="")
    try:
        sample = stream.read(SNIFF_BYTES)
        stream.seek(0)
    except UnicodeDecodeError as exc:
        raw.close()
        raise FileError(f"the file is not {_encoding_name(encoding)} text ({exc.reason} at byte {exc.start})") from None
    if not sample.strip():
        raw.close()
        raise FileError("the file is empty")
    return CsvSource(stream, raw, encoding, sniff_delimiter(sample), path.stat().st_size)


def _encoding_name(encoding: str) -> str:
    return "UTF-8 or Windows-1252" if encoding == "cp1252" else encoding.upper().replace("-SIG", "")


def read_records(stream: IO[str], delimiter: str) -> tuple[list[str], Iterator[tuple[int, dict | str]]]:
    """The header and an iterator of (line number of the record's first line, record).

    A record that cannot be used (the wrong number of fields, a NUL byte, a value over
    FIELD_LIMIT characters) comes back as a string saying so, for the caller to reject with
    its line number. What no row can survive (text that does not decode, a value past
    READ_LIMIT) raises FileError with the line.
    """
    reader = csv.reader(stream, delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FileError("the file has no header line") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise FileError(f"the header cannot be read: {exc}") from None
    if any("\x00" in h for h in header):
        raise FileError("the header holds a NUL byte: is this a text file?")
    if len(set(header)) != len(header):
        dupes = sorted({h for h in header if header.count(h) > 1})
        raise FileError(f"the header repeats column(s) {', '.join(dupes)}")

    def records() -> Iterator[tuple[int, dict | str]]:
        line = reader.line_num + 1
        try:
            for fields in reader:
                # One join per row answers both "is it blank" and fields_problem's first
                # test (this loop runs for every row of every file).
                joined = "".join(fields)
                if joined and not joined.isspace():
                    if len(fields) != len(header):
                        yield line, f"has {len(fields)} fields, the header has {len(header)}"
                    elif len(joined) <= FIELD_LIMIT and "\x00" not in joined:
                        yield line, dict(zip(header, fields))
                    else:
                        yield line, fields_problem(header, fields) or dict(zip(header, fields))
                line = reader.line_num + 1
        except csv.Error as exc:
            raise FileError(f"line {line}: {exc}") from None
        except UnicodeDecodeError as exc:
            raise FileError(f"line {line}: the text does not decode ({exc.reason}); save the file as CSV UTF-8") from None

    return header, records()


def fields_problem(header: list[str], fields: list[str]) -> str | None:
    """Why a row's values cannot be stored (a NUL byte, a value over FIELD_LIMIT), else None."""
    # One cheap test per row (this runs for every row of every file); which column is at
    # fault is looked for only when it trips.
    joined = "".join(fields)
    if len(joined) <= FIELD_LIMIT and "\x00" not in joined:
        return None
    for name, value in zip(header, fields):
        if "\x00" in value:
            return f"has a NUL byte in column '{name}'"
        if len(value) > FIELD_LIMIT:
            return f"has {len(value):,} characters in column '{name}', at most {FIELD_LIMIT:,} allowed"
    return None


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


def parse_dates(texts: list[str]) -> list[date]:
    """parse_date of each of many values; ValueProblem (naming none) if any is not a date."""
    try:
        return [date.fromisoformat(text.strip()) for text in texts]
    except ValueError:
        pass
    # Dates with times, or something wrong: one by one (the caller says where and why).
    return [parse_date(text) for text in texts]


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


def infer_type(values: Iterable[str], *, odd_allowed: bool = False) -> str:
    """The narrowest attribute type that every non-blank sample value fits.

    With `odd_allowed`, a few values that fit no type but text do not make the column text:
    one in a sample of ten or more, or 1% of a larger sample ("maybe" in a yes/no column).
    Their rows are then rejected, naming the column and the type. A value that looks like a
    number but is not one ("007", "1,234") still makes a column of numbers text: it says the
    column holds codes, not a typo.
    """
    sample = [v.strip() for v in values if v.strip()]
    if not sample:
        return "text"
    kind = _narrowest(sample, 0)
    if kind == "text" and odd_allowed:
        kind = _narrowest(sample, max(1, len(sample) // 100) if len(sample) >= 10 else 0)
    return kind


def _narrowest(sample: list[str], odd: int) -> str:
    for kind, fits in TYPE_TESTS:
        misfits = [v for v in sample if not fits(v)]
        if len(misfits) > odd:
            continue
        if kind == "boolean" and {v.lower() for v in sample if fits(v)} <= {"t", "f", "y", "n"}:
            continue  # single letters alone are more likely grades or codes than yes/no
        if kind in ("integer", "number") and any(NUMBER_LIKE_RE.match(v) for v in misfits):
            continue
        return kind
    return "text"


def _is_date(text: str) -> bool:
    if not DATE_RE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


TYPE_TESTS = [
    ("boolean", lambda v: v.lower() in TRUE_WORDS or v.lower() in FALSE_WORDS),
    ("integer", INTEGER_RE.match),
    ("number", NUMBER_RE.match),
    ("date", _is_date),
]


def parse_attribute(kind: str, text: str):
    """A JSON-ready value for an attribute of the given type; blank is None."""
    if not text.strip():
        return None
    return ATTRIBUTE_PARSERS[kind](text)
