"""A first load into an empty table: the rows COPYed straight into it, no staging table.

The staging table exists to find what SQL must decide: keys already in the table (update,
merge the attributes, or leave alone) and keys the file holds twice. An empty table,
locked against other writers, has no keys of its own, so every valid row is new; what
is left is the file's own repeats, and those are found on the way in: the first row of
each key goes to the table, a later row whose key hash was seen before is held aside.
At the end the held rows (none, in a clean file) go through the staging table's usual
steps: a held row whose key is now in the table repeats an earlier line of the file and
is rejected naming it; one whose hash only collided with another key is inserted; held
rows repeating each other keep their first line. The result, the rows and the rejects
file are what the staging path gives (tests/customers/importers/test_direct.py).

Why: profiled at 300,000 customers into the empty table (statement timings and
cProfile), the staging round trip was the largest cost after the parse: the INSERT ...
SELECT from staging alone took 2.1 s, beside 2.4-3.4 s of index builds that a raw COPY
pays too. Direct, PostgreSQL inserts the rows while Python parses the next ones, where
staged its INSERT runs after the whole parse; that overlap needs a free core (the
database on its own host, as in production). On this shared 2-core machine, with no core
free (load 2.6-3.1), the two paths were within noise of each other at 300,000 rows
(interleaved rounds, indexes built after: staged 7.28/7.89/8.84 s, direct
7.27/8.61/8.45 s), so the gain is not measured here; the parse itself is what remains.

Only for kinds whose rows name no customer (customers): orders and events need the
join to customers that staging gives them.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator

from django.db import connection
from django.utils import timezone

from core.bulk import bulk_copy, staging_table
from core.db import is_postgres
from core.rejects import RejectWriter

from .specs import Spec
from .staging import STAGING, key_positions, rejects_find, staged_upsert, staging_columns

# Under this many records in the head of the file the staging path stays: the time saved
# is a few milliseconds, not worth locking the table for.
DIRECT_MIN_ROWS = 1000
# Held rows kept in memory up to this many; past it they are spilled to a temporary file,
# so a file that repeats most of its keys does not grow the importer's memory with it.
HELD_IN_MEMORY = 10_000

_key_hash = hash  # a module name, so a test can make every key collide


def direct_fits(spec: Spec, head_rows: int) -> bool:
    """Whether a load of this kind, with this many records read ahead, may skip staging."""
    return is_postgres() and not spec.customer_ref and head_rows >= DIRECT_MIN_ROWS


class _Held:
    """The rows held aside, in memory and, past HELD_IN_MEMORY, in a temporary file."""

    def __init__(self):
        self.rows: list[tuple] = []
        self.count = 0
        self._spill = None

    def append(self, row: tuple) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= HELD_IN_MEMORY:
            if self._spill is None:
                self._spill = tempfile.TemporaryFile()
            pickle.dump(self.rows, self._spill, protocol=pickle.HIGHEST_PROTOCOL)
            self.rows = []

    def __iter__(self) -> Iterator[tuple]:
        if self._spill is not None:
            self._spill.seek(0)
            while True:
                try:
                    yield from pickle.load(self._spill)
                except EOFError:
                    break
            self._spill.close()
            self._spill = None
        yield from self.rows


def _first_rows(spec: Spec, rows: Iterable[tuple], held: _Held) -> Iterator[tuple]:
    """The rows whose key hash is new; the others go to `held` with the line that hash
    was first seen on. One int per row is kept (hash -> line), not the keys."""
    positions = key_positions(spec)
    first: dict[int, int] = {}
    setdefault = first.setdefault
    key_hash = _key_hash
    single = positions[0] if len(positions) == 1 else None
    for row in rows:
        key = row[single] if single is not None else tuple(row[p] for p in positions)
        line = row[0]
        seen = setdefault(key_hash(key), line)
        if seen is line:
            yield row
        else:
            held.append((*row, seen))


def direct_load(spec: Spec, sources: dict[str, str], rows: Iterable[tuple], rejects: RejectWriter) -> int:
    """COPY staging-shaped tuples (line, columns..., extra) into the empty, locked table:
    how many rows it now holds. Repeated keys are rejected as the staging path rejects them."""
    table = spec.model._meta.db_table
    fields = [c.name for c in spec.columns]
    # As text: PostgreSQL reads it once per row faster than psycopg writes a datetime
    # (write_row took twice as long with the two datetimes in every row, cProfile).
    now = timezone.now().isoformat()
    stamps = (now, now)
    held = _Held()
    copied = 0

    def table_rows() -> Iterator[tuple]:
        nonlocal copied
        for row in _first_rows(spec, rows, held):
            copied += 1
            yield row[1:] + stamps

    bulk_copy(table, [*fields, spec.extra_column, "created_at", "updated_at"], table_rows())
    if not held.count:
        return copied
    return copied + _held_resolve(spec, sources, held, rejects)


def _held_resolve(spec: Spec, sources: dict[str, str], held: _Held, rejects: RejectWriter) -> int:
    """Reject the held rows that repeat a key of the file, insert the others: how many inserted."""
    table = spec.model._meta.db_table
    columns = [c for c in staging_columns(spec) if c[0] != "reject"]
    with staging_table(STAGING, [*columns, ("first_line", "integer"), ("reject", "text")]) as stage:
        stage.copy_rows(held, [name for name, _ in columns] + ["first_line"])
        key_match = " AND ".join(f"t.{k} = {STAGING}.{k}" for k in spec.key)
        with connection.cursor() as cursor:
            # In the table means copied above, from an earlier line: the first of its hash.
            cursor.execute(
                f"UPDATE {STAGING} SET reject = 'duplicate external_id in the file, first on line ' || first_line "
                f"FROM {table} t WHERE {key_match}"
            )
        # Repeats among the held rows themselves, and writing every reject in line order.
        rejects_find(spec, sources, rejects, repeated_keys=True)
        created, _ = staged_upsert(spec, sources, into_empty=True)
        return created
