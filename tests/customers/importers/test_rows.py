"""Chunks parsed column by column give the rows the row-by-row path gives, and a chunk
with one bad value still rejects only that row, with its reason."""

import json
from datetime import date

import pytest

from core.rejects import RejectWriter
from customers.importers import rows as rows_module
from customers.importers.result import ImportResult
from customers.importers.rows import rows_parse
from customers.importers.specs import SPECS

SPEC = SPECS["customers"]
HEADER = ["external_id", "email", "name", "country", "time_zone", "signup_date", "plan", "visits", "vip", "score"]
SOURCES = {name: name for name in HEADER[:6]}
TYPES = {"plan": "text", "visits": "integer", "vip": "boolean", "score": "number"}


def record(i: int, **changes) -> dict:
    values = {
        "external_id": f" c{i} ", "email": f"c{i}@example.com", "name": f"Ann Café {i}", "country": "FR",
        "time_zone": "Europe/Paris", "signup_date": f"2024-05-{1 + i % 28:02d}", "plan": 'gold "x"',
        "visits": str(i), "vip": "yes" if i % 2 else "No", "score": f"{i}.5",
    }
    return values | changes


def parse(records, chunk_rows, monkeypatch):
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", chunk_rows)
    rejects = RejectWriter(None, HEADER)
    result = ImportResult(kind="customers", source="test")
    rows = list(rows_parse(SPEC, SOURCES, TYPES, records, rejects, result, "", {}))
    return rows, rejects, result


def test_a_clean_chunk_gives_the_rows_of_the_row_by_row_path(monkeypatch):
    records = [(i + 2, record(i)) for i in range(7)]
    records.append((9, record(7, email="", time_zone=" ", signup_date="", plan="", visits=" ")))
    # One chunk of everything (column by column) against chunks of one row, where the
    # blank values above send every chunk holding them down the row-by-row path as well.
    whole, _, result = parse(records, 100, monkeypatch)
    one_by_one = [row for line, rec in records for row in parse([(line, rec)], 1, monkeypatch)[0]]
    assert whole == one_by_one and result.rows == 8
    first = whole[0]
    assert first[:7] == (2, "c0", "c0@example.com", "Ann Café 0", "FR", "Europe/Paris", date(2024, 5, 1))
    assert json.loads(first[7]) == {"plan": 'gold "x"', "visits": 0, "vip": False, "score": 0.5}
    assert first[7] == json.dumps({"plan": 'gold "x"', "visits": 0, "vip": False, "score": 0.5})
    last = whole[-1]
    assert last[1:8] == ("c7", "", "Ann Café 7", "FR", "UTC", None, '{"vip": true, "score": 7.5}')


@pytest.mark.parametrize("changes,reason", [
    ({"email": "not-an-address"}, "line 5: column 'email': 'not-an-address' is not an email address"),
    ({"external_id": "  "}, "line 5: column 'external_id' is blank"),
    ({"name": "x" * 201}, "line 5: column 'name': is 201 characters long, at most 200 allowed"),
    ({"time_zone": "Mars/Base"}, "line 5: column 'time_zone': 'Mars/Base' is not an IANA time zone (e.g. Europe/Paris)"),
    ({"signup_date": "2024-02-30"}, "line 5: column 'signup_date': '2024-02-30' is not a date (use YYYY-MM-DD)"),
    ({"visits": "many"}, "line 5: column 'visits' (integer): 'many' is not a whole number"),
])
def test_one_bad_value_in_a_chunk_rejects_its_row_only(monkeypatch, changes, reason):
    records = [(line, record(line)) for line in range(2, 9)]
    records[2] = (4, "has 3 fields, the header has 10")
    records[3] = (5, record(5, **changes))
    rows, rejects, result = parse(records, 4, monkeypatch)
    assert [row[0] for row in rows] == [2, 3, 6, 7, 8]
    assert rejects.samples == [
        {"line": 4, "reason": "line 4: row has 3 fields, the header has 10"}, {"line": 5, "reason": reason},
    ]
    assert result.rows == 7


@pytest.mark.parametrize("kind, texts", [
    ("text", [" a ", "é", 'q"uote', "\\", "", "  ", None, "x\ny", "\u2028", "😀"]),
    ("integer", ["0", "-0", "+5", " 12 ", "", None, "99999999999999999999", "-3"]),
    ("boolean", ["yes", " No ", "T", "1", "0", "", None, "TRUE"]),
    ("integer", ["1", "007"]),
    ("integer", ["1.5"]),
    ("boolean", ["yes", "maybe"]),
])
def test_an_extra_columns_json_pieces_are_what_its_parser_and_json_value_write(kind, texts):
    from core import parsing
    from core.parsing import ValueProblem

    parse = parsing.ATTRIBUTE_PARSERS[kind]
    try:
        expected = ['"k": ' + rows_module._json_value(parse(t)) if t and not t.isspace() else None for t in texts]
    except ValueProblem:
        with pytest.raises((ValueProblem, KeyError)):
            rows_module._json_pieces(kind, parse, '"k": ', texts)
        return
    assert rows_module._json_pieces(kind, parse, '"k": ', texts) == expected
