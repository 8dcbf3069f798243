"""A large first load rebuilds the indexes after the rows instead of row by row, and leaves
the table indexed and constrained exactly as before; into a big table nothing is dropped."""

import csv

import pytest
from django.db import IntegrityError, connection, transaction

from core.db import is_postgres
from customers.importers import indexes
from customers.importers.run import import_file
from customers.models import Customer

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not is_postgres(), reason="index deferral is PostgreSQL's; SQLite keeps its indexes"),
]

TABLE = Customer._meta.db_table


def table_shape() -> tuple[list, list]:
    return indexes.secondary_indexes(TABLE), indexes.unique_constraints(TABLE)


def write(tmp_path, rows: list[str], name="c.csv"):
    path = tmp_path / name
    path.write_text("external_id,name,email,plan\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(indexes, "DEFER_MIN_ROWS", 3)


def test_the_customers_table_has_secondary_indexes_and_a_unique_id_to_defer():
    names = [name for name, _ in indexes.secondary_indexes(TABLE)]
    assert {"customer_email_lower", "customer_signup", "customer_country", "customer_name_trgm"} <= set(names)
    assert [d for _, d in indexes.unique_constraints(TABLE)] == ["UNIQUE (external_id)"]


def test_a_first_load_into_an_empty_table_plans_everything_deferred(small_threshold):
    with transaction.atomic():
        assert indexes.load_plan(TABLE, 5) == indexes.LoadPlan(defer_indexes=True, empty=True)
        assert indexes.load_plan(TABLE, 2) == indexes.LoadPlan()  # under the threshold
        assert indexes.load_plan(TABLE, 5, defer=False) == indexes.LoadPlan()


def test_a_load_no_bigger_than_the_table_keeps_the_unique_constraint_and_a_smaller_one_everything(small_threshold):
    Customer.objects.bulk_create([Customer(external_id=f"x{i}") for i in range(4)])
    with transaction.atomic():
        assert indexes.load_plan(TABLE, 4) == indexes.LoadPlan(defer_indexes=True, empty=False)
        assert indexes.load_plan(TABLE, 3) == indexes.LoadPlan()


def test_a_deferred_first_load_leaves_the_same_indexes_and_still_rejects_duplicates(tmp_path, small_threshold):
    before = table_shape()
    path = write(tmp_path, ["1,Ann,ann@example.com,gold", "2,Bob,bob@example.com,free",
                            "1,Ann again,ann2@example.com,pro", "3,Cy,cy@example.com,gold", "4,Di,,free"])
    result = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    assert (result.imported, result.created, result.rejected) == (4, 4, 1)
    with open(result.rejects_path, newline="", encoding="utf-8") as fh:
        (reject,) = csv.DictReader(fh)
    assert reject["reason"] == "line 4: duplicate external_id in the file, first on line 2"
    assert table_shape() == before
    assert Customer.objects.get(external_id="1").attributes == {"plan": "gold"}
    # The rebuilt unique constraint is a real one.
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(external_id="2")


def test_importing_the_same_file_again_changes_nothing_with_the_indexes_deferred(tmp_path, small_threshold):
    path = write(tmp_path, [f"{i},N{i},n{i}@example.com,p{i % 2}" for i in range(6)])
    first = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    before = list(Customer.objects.order_by("id").values_list("id", "external_id", "name", "attributes", "updated_at"))
    again = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    assert (first.created, again.created, again.updated, again.unchanged) == (6, 0, 0, 6)
    after = list(Customer.objects.order_by("id").values_list("id", "external_id", "name", "attributes", "updated_at"))
    assert after == before


def test_a_small_table_doubling_keeps_its_rows_and_updates_the_changed_ones(tmp_path, small_threshold):
    import_file("customers", write(tmp_path, ["1,Ann,a@example.com,gold", "2,Bob,b@example.com,free"], "a.csv"),
                rejects_path=tmp_path / "r.csv", defer_indexes=False)
    before = table_shape()
    path = write(tmp_path, ["1,Ann,a@example.com,pro", "2,Bob,b@example.com,free", "3,Cy,,gold", "4,Di,,gold"])
    result = import_file("customers", path, rejects_path=tmp_path / "r.csv")
    assert (result.created, result.updated, result.unchanged) == (2, 1, 1)
    assert Customer.objects.get(external_id="1").attributes == {"plan": "pro"}
    assert Customer.objects.count() == 4
    assert table_shape() == before


def test_a_load_that_fails_leaves_the_indexes_it_dropped(small_threshold):
    before = table_shape()
    with pytest.raises(RuntimeError), transaction.atomic():
        plan = indexes.load_plan(TABLE, 10)
        with indexes.indexes_deferred(TABLE, plan) as dropped:
            assert len(dropped) == len(before[0]) + len(before[1])
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM pg_indexes WHERE tablename = %s", [TABLE])
                assert cursor.fetchone()[0] == 1  # the primary key alone
            raise RuntimeError("the load broke off")
    assert table_shape() == before
