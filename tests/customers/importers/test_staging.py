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
