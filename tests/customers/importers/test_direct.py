"""A first load into an empty table COPYs straight into it and gives what the staging path
gives: the same rows, the same counts, the same rejects file, line for line."""

import csv
import io

import pytest
from django.db import IntegrityError, transaction

from core.db import is_postgres
from customers.importers import direct, indexes
from customers.importers.run import import_file
from customers.models import AttributeDefinition, Customer

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not is_postgres(), reason="the direct COPY is PostgreSQL's; SQLite always stages"),
]

TABLE = Customer._meta.db_table

# Bad values, a short row, repeats of a good row (twice), a repeat of a rejected row (the
# first valid one wins), blank attributes and a typed attribute column.
FILE = (
    "external_id,email,name,country,signup_date,plan,visits\n"
    "a1,a1@example.com,Ann,FR,2024-01-02,gold,3\n"
    "a2,not-an-email,Bob,US,2024-01-02,gold,4\n"
    "a3,a3@example.com,Cy,DE,2024-02-30,silver,5\n"
    "a1,a1b@example.com,Ann again,FR,2024-01-03,pro,6\n"
    "a2,a2@example.com,Bob fixed,US,2024-01-04,,7\n"
    "a4,a4@example.com,Dee,,,free,\n"
    "a5,a5@example.com\n"
    "a1,a1c@example.com,Ann thrice,FR,,team,8\n"
    "a6,a6@example.com,Eve,US,2023-12-31,,11\n"
    "a2,a2b@example.com,Bob again,US,,gold,9\n"
    "a7,,Fay,US,2022-05-06,free,10\n"
)


@pytest.fixture
def direct_from_one_row(monkeypatch):
    monkeypatch.setattr(direct, "DIRECT_MIN_ROWS", 1)


@pytest.fixture
def loads(monkeypatch):
    """Which path each import took: 'direct' or 'staged'."""
    taken = []
    real = direct.direct_load

    def spy(*args, **kwargs):
        taken.append("direct")
        return real(*args, **kwargs)

    monkeypatch.setattr("customers.importers.run.direct_load", spy)
    return taken


def customers() -> list[tuple]:
    return list(
        Customer.objects.order_by("external_id").values_list(
            "external_id", "email", "name", "country", "time_zone", "signup_date", "attributes"
        )
    )


def load(tmp_path, name: str, text: str = FILE, **options):
    path = tmp_path / f"{name}.csv"
    path.write_text(text, encoding="utf-8")
    result = import_file("customers", path, rejects_path=tmp_path / f"{name}.rejects.csv", **options)
    rejects = (tmp_path / f"{name}.rejects.csv").read_text(encoding="utf-8") if result.rejects_path else ""
    counts = (result.rows, result.imported, result.created, result.updated, result.unchanged, result.rejected)
    return counts, customers(), rejects, result


def staged_then_direct(tmp_path, monkeypatch, text: str = FILE, **options):
    """The file through the staging path into the empty table, then (emptied) directly."""
    monkeypatch.setattr(direct, "DIRECT_MIN_ROWS", 10**9)
    staged = load(tmp_path, "staged", text, **options)
    Customer.objects.all().delete()
    AttributeDefinition.objects.all().delete()
    monkeypatch.setattr(direct, "DIRECT_MIN_ROWS", 1)
    return staged, load(tmp_path, "direct", text, **options)


def test_a_load_into_the_empty_table_gives_the_staging_paths_rows_counts_and_rejects(tmp_path, monkeypatch, loads):
    staged, direct_ = staged_then_direct(tmp_path, monkeypatch)
    assert loads == ["direct"]
    assert direct_[:3] == staged[:3]
    counts, rows, rejects, result = direct_
    assert counts == (11, 5, 5, 0, 0, 6)
    reasons = {int(r["line"]): r["reason"] for r in csv.DictReader(io.StringIO(rejects))}
    assert {line: reasons[line] for line in (5, 9, 11)} == {
        5: "line 5: duplicate external_id in the file, first on line 2",
        9: "line 9: duplicate external_id in the file, first on line 2",
        11: "line 11: duplicate external_id in the file, first on line 6",
    }
    assert dict((r[0], r[6]) for r in rows)["a2"] == {"visits": 7}
    assert [s["line"] for s in result.reject_samples] == [3, 4, 8, 5, 9, 11]


def test_with_the_indexes_kept_the_direct_load_gives_the_same(tmp_path, monkeypatch, loads):
    staged, direct_ = staged_then_direct(tmp_path, monkeypatch, defer_indexes=False)
    assert loads == ["direct"]
    assert direct_[:3] == staged[:3]


def test_keys_whose_hashes_collide_are_told_apart_by_sql(tmp_path, monkeypatch, loads):
    """Every key hashed alike: all rows but the first are held, and SQL decides which
    repeat a key (rejected naming the first line) and which are new (inserted)."""
    monkeypatch.setattr(direct, "_key_hash", lambda key: 0)
    staged, direct_ = staged_then_direct(tmp_path, monkeypatch)
    assert loads == ["direct"]
    assert direct_[:3] == staged[:3]


def test_held_rows_spilled_to_disk_come_back(tmp_path, monkeypatch, loads):
    monkeypatch.setattr(direct, "_key_hash", lambda key: 0)
    monkeypatch.setattr(direct, "HELD_IN_MEMORY", 2)
    staged, direct_ = staged_then_direct(tmp_path, monkeypatch)
    assert direct_[:3] == staged[:3]


def test_the_direct_load_leaves_the_table_indexed_and_constrained_as_before(tmp_path, direct_from_one_row):
    before = indexes.secondary_indexes(TABLE), indexes.unique_constraints(TABLE)
    load(tmp_path, "direct")
    assert (indexes.secondary_indexes(TABLE), indexes.unique_constraints(TABLE)) == before
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(external_id="a1")


def test_a_table_with_rows_is_staged_and_merges_attributes_as_before(tmp_path, direct_from_one_row, loads):
    Customer.objects.create(external_id="a1", name="Old", attributes={"plan": "basic", "kept": True})
    counts, rows, _, _ = load(tmp_path, "again")
    assert loads == []
    assert counts == (11, 5, 4, 1, 0, 6)
    assert dict((r[0], r[6]) for r in rows)["a1"] == {"plan": "gold", "visits": 3, "kept": True}


def test_a_small_file_is_staged_even_into_the_empty_table(tmp_path, loads):
    load(tmp_path, "small")
    assert loads == []
    assert Customer.objects.count() == 5


def test_importing_the_same_file_again_after_a_direct_load_changes_nothing(tmp_path, direct_from_one_row, loads):
    load(tmp_path, "first")
    stamps = list(Customer.objects.order_by("id").values_list("id", "external_id", "attributes", "updated_at"))
    counts, *_ = load(tmp_path, "second")
    assert loads == ["direct"]
    assert counts == (11, 5, 0, 0, 5, 6)
    assert list(Customer.objects.order_by("id").values_list("id", "external_id", "attributes", "updated_at")) == stamps
