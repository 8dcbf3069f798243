"""Writing many trusted rows at once: COPY on PostgreSQL, batched INSERTs on SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection

SQLITE_BATCH = 5000


def bulk_copy(table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Append rows to a table: COPY on PostgreSQL, batched INSERTs on SQLite.

    For trusted, already-typed rows (demo data, benchmarks); files go through importers.
    Datetimes must be aware; on SQLite they are stored the way Django stores them.
    """
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapt = connection.ops.adapt_datetimefield_value
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch: list[tuple] = []
        for row in rows:
            batch.append(tuple(adapt(v) if isinstance(v, datetime) else v for v in row))
            if len(batch) >= SQLITE_BATCH:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
