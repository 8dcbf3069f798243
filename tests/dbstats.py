"""What PostgreSQL's planner believes about a table, for tests of the statistics we refresh."""

from django.db import connection


def planned_rows(model) -> float:
    """The table's row count as the planner sees it (pg_class.reltuples, set by ANALYZE)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        return cursor.fetchone()[0]
