from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection, transaction

from core.bulk import bulk_copy, staging_table
from core.db import is_postgres

COLUMNS = [("line", "integer"), ("code", "text"), ("amount", "numeric(12,2)"),
           ("day", "date"), ("at", "timestamptz"), ("reject", "text")]


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"pg_temp.{name}"])
            return cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM sqlite_temp_master WHERE name = %s", [name])
        return cursor.fetchone()[0] == 1


@pytest.mark.django_db
def test_staging_table_loads_typed_rows_and_drops_itself():
    at = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    with staging_table("t_stage", COLUMNS, indexes=["code"]) as stage:
        stage.copy_rows([(1, "0012", Decimal("9.50"), date(2024, 5, 1), at),
                         (2, "b", None, None, None)], ["line", "code", "amount", "day", "at"])
        assert stage.count() == 2
        with connection.cursor() as cursor:
            # Text that looks like a number stays text; a date compares as a date.
            cursor.execute(f"SELECT code, amount FROM {stage.name} WHERE day = %s AND reject IS NULL",
                           [date(2024, 5, 1)])
            code, amount = cursor.fetchone()
        assert code == "0012"
        assert Decimal(str(amount)) == Decimal("9.50")
        assert _table_exists("t_stage")
    assert not _table_exists("t_stage")


@pytest.mark.django_db
def test_staging_table_loads_in_batches_across_calls():
    rows = ((i, f"c{i}") for i in range(12_345))
    with staging_table("t_many", [("line", "integer"), ("code", "text")]) as stage:
        stage.copy_rows(rows)
        stage.copy_rows([(0, "again")])
        assert stage.count() == 12_346


@pytest.mark.django_db(transaction=True)
def test_staging_table_leaves_nothing_behind_when_the_block_fails():
    with pytest.raises(RuntimeError):
        with staging_table("t_failed", COLUMNS) as stage:
            stage.copy_rows([(1, "a")], ["line", "code"])
            raise RuntimeError("boom")
    assert not _table_exists("t_failed")
    # The same name is free again, in the same session.
    with staging_table("t_failed", COLUMNS) as stage:
        assert stage.count() == 0


@pytest.mark.django_db
def test_staging_table_can_be_used_twice_in_one_transaction():
    with transaction.atomic():
        for _ in range(2):
            with staging_table("t_twice", [("line", "integer")]) as stage:
                stage.copy_rows([(1,)])
                assert stage.count() == 1


@pytest.mark.django_db
def test_bulk_copy_appends_rows_with_aware_datetimes():
    from customers.models import Customer

    at = datetime(2024, 1, 2, 3, 4, tzinfo=UTC)
    bulk_copy(Customer._meta.db_table,
              ["external_id", "email", "name", "country", "time_zone", "attributes", "created_at", "updated_at"],
              [(f"x{i}", "", "", "", "UTC", "{}", at, at) for i in range(3)])
    assert list(Customer.objects.order_by("external_id").values_list("external_id", "created_at")) == [
        (f"x{i}", at) for i in range(3)
    ]
