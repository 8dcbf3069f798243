"""Validating records: the importer's hot loop, from text records to staging tuples.

Records are checked a chunk at a time, column by column: one list comprehension per
column instead of a Python step per value, and each row's extra columns written as JSON
text from pieces made per column. Most files are clean; a chunk in which any value fails
is parsed again row by row, which finds each bad value and says where and why. Profiled
at 100,000 customers (cProfile, bench/import_customers.py's file): the row-by-row loop
took 12-20 us a row, two thirds of the importer's Python time, and json.dumps of each
row's extra values a fifth of that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from operator import itemgetter
from json.encoder import encode_basestring_ascii

from core import parsing
from core.parsing import ValueProblem
from core.rejects import RejectWriter

from .result import ImportResult
from .specs import Spec

CHUNK_ROWS = 2000


class _Unclean(Exception):
    """A value in the chunk needs the row-by-row path (to be rejected with its reason)."""


def rows_parse(
    spec: Spec,
    sources: dict[str, str],
    extra_types: dict[str, str],
    records: Iterable[tuple[int, dict | str]],
    rejects: RejectWriter,
    result: ImportResult,
    id_prefix: str,
    defaults: dict,
) -> Iterator[tuple]:
    """Staging tuples for the valid records; every other record goes to rejects."""
    # The per-column decisions are made once here, not once per row or chunk.
    plan = []
    for column in spec.columns:
        source = sources.get(column.name)
        generated = column.name == "external_id" and source is None
        default = defaults.get(column.name, column.default)
        plan.append((source, column.parse, column.parse_many, column.required, default, generated))
    extra_plan = [(name, parsing.ATTRIBUTE_PARSERS[kind], kind) for name, kind in extra_types.items()]
    records = iter(records)
    while chunk := list(islice(records, CHUNK_ROWS)):
        result.rows += len(chunk)
        try:
            yield from _chunk_parse(plan, extra_plan, chunk, id_prefix)
        except _Unclean:
            for line, record in chunk:
                row = _row_parse(plan, extra_plan, line, record, rejects, id_prefix)
                if row is not None:
                    yield row


def _chunk_parse(plan: list, extra_plan: list, chunk: list, id_prefix: str) -> list[tuple]:
    """The chunk's staging tuples, column by column; _Unclean if any record needs a reason."""
    lines = []
    records = []
    for line, record in chunk:
        if isinstance(record, str):
            raise _Unclean
        lines.append(line)
        records.append(record)
    columns: list[list] = [lines]
    for source, parse, parse_many, required, default, generated in plan:
        if generated:
            columns.append([f"{id_prefix}{line}" for line in lines])
            continue
        if source is None:
            if required:
                raise _Unclean
            columns.append([default] * len(lines))
            continue
        texts = _column_texts(records, source)
        # Blank or not, asked of the whole column at once first: a column with no blank
        # (most of them) needs no per-value flags.
        filled = all(texts) and not any(map(str.isspace, texts))
        if required and not filled:
            raise _Unclean
        try:
            if parse_many is not None and filled:
                columns.append(parse_many(texts))
            else:
                blank = [not text or text.isspace() for text in texts]
                columns.append([default if empty else parse(text) for text, empty in zip(texts, blank)])
        except ValueProblem:
            raise _Unclean from None
    columns.append(_extras_json(extra_plan, records))
    return list(zip(*columns))


def _column_texts(records: list[dict], name: str) -> list[str | None]:
    """One column's values in a chunk; None where a record lacks it (a JSON batch may)."""
    try:
        return list(map(itemgetter(name), records))
    except KeyError:
        return [record.get(name) for record in records]


def _json_value(value) -> str:
    """What json.dumps writes for a parsed attribute value, without its per-call setup."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:
        return encode_basestring_ascii(value)
    if type(value) is int:
        return int.__repr__(value)
    return json.dumps(value)


_BOOLEAN_JSON = {word: "true" for word in parsing.TRUE_WORDS} | {word: "false" for word in parsing.FALSE_WORDS}


def _json_pieces(kind: str, parse, key: str, texts: list[str | None]) -> list[str | None]:
    """'"name": value' for each text of one extra column, None where blank.

    Text, integer and boolean columns (most of them) are written here without a call to
    their parser and to _json_value per value: those two calls were half the extra
    columns' cost (cProfile, 300,000 customers with three extra columns). The result is
    the same text; a value the parser would refuse raises ValueProblem or KeyError.
    """
    if kind == "text":
        return [key + encode_basestring_ascii(text) if text and not text.isspace() else None for text in texts]
    if kind == "boolean":
        return [key + _BOOLEAN_JSON[text.strip().lower()] if text and not text.isspace() else None for text in texts]
    if kind == "integer":
        values = [text.strip() if text and not text.isspace() else None for text in texts]
        match = parsing.INTEGER_RE.match
        if not all([match(value) for value in values if value is not None]):
            raise ValueProblem("a value is not a whole number")
        return [None if value is None else key + int.__repr__(int(value)) for value in values]
    return [key + _json_value(parse(text)) if text and not text.isspace() else None for text in texts]


def _extras_json(extra_plan: list, records: list[dict]) -> list[str]:
    """Each record's typed extra values as a JSON object's text, blank values left out."""
    if not extra_plan:
        return ["{}"] * len(records)
    pieces: list[list[str | None]] = []
    for name, parse, kind in extra_plan:
        key = encode_basestring_ascii(name) + ": "
        texts = _column_texts(records, name)
        try:
            pieces.append(_json_pieces(kind, parse, key, texts))
        except (ValueProblem, KeyError):
            raise _Unclean from None
    return ["{" + ", ".join([p for p in row if p is not None]) + "}" for row in zip(*pieces)]


def _row_parse(
    plan: list, extra_plan: list, line: int, record: dict | str, rejects: RejectWriter, id_prefix: str,
) -> tuple | None:
    """One record's staging tuple, or None once it is written to rejects with its reason."""
    if isinstance(record, str):
        rejects.write(line, f"line {line}: row {record}", None)
        return None
    values: list = [line]
    try:
        for source, parse, _, required, default, generated in plan:
            if generated:
                values.append(f"{id_prefix}{line}")
                continue
            text = record.get(source) if source else None
            if not text or text.isspace():
                if required:
                    raise ValueProblem(f"column '{source}' is blank")
                values.append(default)
                continue
            try:
                values.append(parse(text))
            except ValueProblem as exc:
                raise ValueProblem(f"column '{source}': {exc}") from None
        extras = {}
        for name, parse, kind in extra_plan:
            text = record.get(name)
            if text and not text.isspace():
                try:
                    extras[name] = parse(text)
                except ValueProblem as exc:
                    raise ValueProblem(f"column '{name}' ({kind}): {exc}") from None
    except ValueProblem as exc:
        rejects.write(line, f"line {line}: {exc}", record)
        return None
    values.append(json.dumps(extras))
    return tuple(values)

