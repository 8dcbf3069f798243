"""The set-based rejects: a duplicate row's rejects line is the whole row, extra columns too."""

import csv

import pytest

from customers.importers.run import import_file

pytestmark = pytest.mark.django_db


def test_a_duplicate_rows_rejects_line_keeps_its_extra_columns(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("external_id,name,plan,vip,visits\n1,Ann,gold,yes,3\n1,Bob,silver,no,7\n", encoding="utf-8")
    result = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    with open(result.rejects_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{
        "line": "3", "reason": "line 3: duplicate external_id in the file, first on line 2",
        "external_id": "1", "name": "Bob", "plan": "silver", "vip": "false", "visits": "7",
    }]


def test_an_unknown_customers_order_keeps_its_extra_columns(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("external_id,customer,amount,ordered_at,channel\no1,ghost,5,2024-05-01,web\n", encoding="utf-8")
    result = import_file("orders", path, rejects_path=tmp_path / "r.csv")
    with open(result.rejects_path, newline="", encoding="utf-8") as fh:
        (row,) = csv.DictReader(fh)
    assert (row["customer"], row["channel"]) == ("ghost", "web")


def test_the_key_watch_says_whether_a_key_came_twice():
    from customers.importers.specs import SPECS
    from customers.importers.staging import KeyWatch

    customers = KeyWatch(SPECS["customers"])
    assert list(customers.watch(iter([(2, "a", "x"), (3, "A", "y")]))) == [(2, "a", "x"), (3, "A", "y")]
    assert (customers.rows, customers.repeated) == (2, False)
    events = KeyWatch(SPECS["events"])  # staged as (line, customer, kind, occurred_at, extra)
    rows = [(2, "c1", "visit", 1, "{}"), (3, "c1", "open", 1, "{}"), (4, "c2", "visit", 1, "{}")]
    list(events.watch(iter(rows)))
    assert (events.rows, events.repeated) == (3, False)
    list(events.watch(iter(rows + [(5, "c1", "open", 1, "{}")])))
    assert events.repeated


def test_a_file_without_repeated_keys_is_imported_whole_and_one_with_them_rejects_the_second(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("external_id,name\n1,Ann\n2,Bob\n", encoding="utf-8")
    result = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    assert (result.imported, result.rejected, result.created) == (2, 0, 2)
    path.write_text("external_id,name\n3,Cy\n2,Bo\n3,Di\n", encoding="utf-8")
    result = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    assert (result.imported, result.rejected, result.created, result.updated) == (2, 1, 1, 1)
