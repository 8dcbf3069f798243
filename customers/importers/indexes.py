"""Building a table's secondary indexes after a large first load instead of row by row.

Keeping an index up to date costs a search and a page write per row (and a GIN trigram
index a dozen entries per row); building it afterwards is one sort of the finished
column. Measured by bench/import_customers.py at 300,000 customers into the empty table
(one run, busy machine): a raw COPY of the typed rows took 63 s with the indexes kept and
37 s with them built after; the importer 210 s kept and 101 s built after. So a load that
at least doubles a table defers them. Into a big table the rebuild would cost more than
the rows saved, so the indexes stay.

Into a table holding rows, only indexes no constraint owns are dropped: the primary key
and unique constraints stay, so ON CONFLICT still finds its row. Into an empty table the
unique constraints go too (the caller then writes with a plain INSERT, the staging table
holding no duplicates): checking each row against a unique index took a third of the
insert's time, and re-adding the constraint checks every row at once. Everything happens
inside the caller's transaction: a failed import rolls the drops back. The table is
locked ACCESS EXCLUSIVE from the drop to the commit, so no other write can slip a
duplicate in and readers wait for the import; on a first load there is nothing to read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection

from core.db import is_postgres

# Under this many rows the drop and rebuild is not worth its lock: the load is quick anyway.
DEFER_MIN_ROWS = 20_000
# A bigger sort budget for the rebuild (the session default, 64 MB, spills 1,000,000 rows).
BUILD_MEMORY = "256MB"


def secondary_indexes(table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the indexes on `table` that no constraint owns."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.conrelid = x.indrelid) "
            "ORDER BY c.relname",
            [table],
        )
        return cursor.fetchall()


def unique_constraints(table: str) -> list[tuple[str, str]]:
    """(name, definition) of the UNIQUE constraints on `table` (not its primary key)."""
    return _constraints(table, "u")


def foreign_keys(table: str) -> list[tuple[str, str]]:
    """(name, definition) of the foreign keys `table` holds."""
    return _constraints(table, "f")


def _constraints(table: str, kind: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = %s ORDER BY conname",
            [table, kind],
        )
        return cursor.fetchall()


def table_rows_upto(table: str, limit: int) -> int:
    """How many rows `table` holds, counting no further than `limit` + 1: a big table is
    not read whole to learn it is big."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT %s) t", [limit + 1])
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class LoadPlan:
    defer_indexes: bool = False  # rebuild the secondary indexes after the load
    empty: bool = False  # the table is empty: constraints too, and a plain INSERT


def load_plan(table: str, incoming: int, defer: bool | None = None) -> LoadPlan:
    """How to load `incoming` rows into `table`, once it is locked against other writers.

    Deferred index builds on PostgreSQL for a load of at least DEFER_MIN_ROWS that is no
    smaller than the table already is (`defer` forces the choice either way).
    """
    if not is_postgres():
        return LoadPlan()
    if defer is None:
        defer = incoming >= DEFER_MIN_ROWS
    if not defer:
        return LoadPlan()
    with connection.cursor() as cursor:
        # Locked before the table is counted and its definitions read, so a concurrent
        # import doing the same waits here, then sees the rows and indexes of the first.
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    existing = table_rows_upto(table, incoming)
    if existing > incoming:
        return LoadPlan()
    return LoadPlan(defer_indexes=True, empty=existing == 0)


def first_load_plan(table: str, defer: bool | None = None) -> LoadPlan | None:
    """The plan for a load into `table` while it is empty, the table locked; None if it holds rows.

    Looked at before locking, so an import into a table with rows never takes the lock
    for this. Empty, the secondary indexes and the unique constraint are built after the
    load whatever its size (`defer` False keeps them): the rows are COPYed before their
    number is known, and deferring wins from about 5,000 rows while costing at most some
    40 ms below. First loads of bench/import_customers.py's file into the empty table
    (`--defer-sizes`, direct COPY, median of 3, load 2.5-2.9 on 2 cores; and at 300,000
    its main run, median of 3, load 2.7-3.1):

        rows       built after   kept      after/kept
        1,000       0.087 s      0.045 s   1.94x
        5,000       0.210 s      0.203 s   1.04x
        20,000      0.596 s      0.698 s   0.85x
        100,000     2.726 s      3.169 s   0.86x
        300,000     7.73 s      10.63 s    0.73x

    Into a small table that holds rows, `load_plan` decides (deferred from DEFER_MIN_ROWS
    when the load is no smaller than the table), matching the 20,000-row crossover here.
    """
    if not is_postgres() or table_rows_upto(table, 0):
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    if table_rows_upto(table, 0):  # another import filled it while this one waited
        return None
    return LoadPlan(defer_indexes=defer is not False, empty=True)


@contextmanager
def indexes_deferred(table: str, plan: LoadPlan) -> Iterator[list[str]]:
    """Drop `table`'s secondary indexes (and, into an empty table, its unique constraints
    and foreign keys) for the block, and build them again after it, as `plan` says.

    A foreign key checked row by row is a query per row, queued to the commit (they are
    DEFERRABLE INITIALLY DEFERRED): ten million orders queue ten million. Added back, it
    is checked for all rows in one join.

    Yields the names of what was dropped. Must run inside a transaction, after `load_plan`
    locked the table.
    """
    if not plan.defer_indexes:
        yield []
        return
    indexes = secondary_indexes(table)
    constraints = unique_constraints(table) + foreign_keys(table) if plan.empty else []
    with connection.cursor() as cursor:
        # PostgreSQL refuses to alter a table with foreign key checks still queued for the
        # commit (an earlier delete in the same transaction queues them): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        for name, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    yield [name for name, _ in indexes + constraints]
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            cursor.execute(definition)
