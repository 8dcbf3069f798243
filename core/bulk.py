"""Writing many rows at once: COPY on PostgreSQL, batched INSERTs on SQLite.

`bulk_copy` appends trusted rows to a real table. `staging_table` is the one temporary
table every importer loads before letting SQL do the set-based work (duplicates, unknown
references, one upsert).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from django.db import connection, transaction

from core.db import is_postgres

SQLITE_BATCH = 5000

Adapter = Callable[[object], object] | None


def bulk_copy(table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """Append rows to a table: COPY on PostgreSQL, batched INSERTs on SQLite.

    For trusted, already-typed rows (demo data, benchmarks); files go through importers.
    Datetimes must be aware; on SQLite they are stored the way Django stores them.
    """
    if not is_postgres():
        adapt = connection.ops.adapt_datetimefield_value
        rows = (tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows)
    _write(table, columns, rows)


def _write(table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    names = ", ".join(columns)
    with connection.cursor() as cursor:
        if is_postgres():
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * len(columns))})"
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= SQLITE_BATCH:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


def _sqlite_adapter(sql_type: str) -> Adapter:
    """How a Python value of a declared PostgreSQL type is stored on SQLite, as Django would."""
    ops = connection.ops
    sql_type = sql_type.lower()
    if sql_type.startswith("timestamp"):
        return ops.adapt_datetimefield_value
    if sql_type == "date":
        return ops.adapt_datefield_value
    if sql_type.startswith("numeric"):
        return lambda v: None if v is None else str(v)
    return None


class Staging:
    """A temporary table being loaded; `name` goes into the caller's SQL."""

    def __init__(self, name: str, columns: Sequence[tuple[str, str]]):
        self.name = name
        self.types = dict(columns)

    def copy_rows(self, rows: Iterable[tuple], columns: Sequence[str] | None = None, *, analyze: bool = True) -> None:
        """Load tuples into `columns` (all of them by default), then refresh the planner's view.

        A temporary table is never analyzed by autovacuum: without ANALYZE PostgreSQL plans
        the joins that follow as if the table were tiny.
        """
        columns = list(columns or self.types)
        if not is_postgres():
            adapters = [_sqlite_adapter(self.types[c]) for c in columns]
            if any(adapters):
                rows = _adapted(rows, adapters)
        _write(self.name, columns, rows)
        if analyze:
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {self.name}")

    def count(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {self.name}")
            return cursor.fetchone()[0]


def _adapted(rows: Iterable[tuple], adapters: list[Adapter]) -> Iterator[tuple]:
    for row in rows:
        yield tuple(a(v) if a else v for a, v in zip(adapters, row))


@contextmanager
def staging_table(name: str, columns: Sequence[tuple[str, str]], *, indexes: Sequence[str] = ()) -> Iterator[Staging]:
    """A temporary table `name` with `columns` as (name, PostgreSQL type) pairs, for the block.

    It runs in a transaction (a savepoint inside one) so a failure leaves no table behind,
    and is dropped when the block ends. SQLite gets the columns untyped: a declared type
    there would give them an affinity that rewrites values ('0012' text -> 12).
    `indexes` names the columns to index before loading.
    """
    pg = is_postgres()
    with transaction.atomic():
        with connection.cursor() as cursor:
            # A session's temporary table outlives a caller that broke off without the
            # block's cleanup (a killed request on a pooled connection): start clean.
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            ddl = ", ".join(f"{column} {sql_type}" if pg else column for column, sql_type in columns)
            cursor.execute(f"CREATE TEMP TABLE {name} ({ddl})" + (" ON COMMIT DROP" if pg else ""))
            for column in indexes:
                cursor.execute(f"CREATE INDEX {name}_{column} ON {name} ({column})")
        yield Staging(name, columns)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {name}")
