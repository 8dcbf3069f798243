"""The set-based steps over the staging table: references, duplicates, and one upsert."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db import connection
from django.utils import timezone

from core.db import is_postgres
from core.rejects import RejectWriter

from ..models import Customer
from .specs import Spec

STAGING = "import_staging"


def staging_columns(spec: Spec) -> list[tuple[str, str]]:
    columns = [("line", "integer")]
    for column in spec.columns:
        name = "customer_ext" if column.name == "customer" else column.name
        columns.append((name, column.sql_type))
    columns.append(("extra", "jsonb"))
    if spec.customer_ref:
        columns.append(("customer_id", "bigint"))
    columns.append(("reject", "text"))
    return columns


def staging_analyze(spec: Spec) -> None:
    """The planner's view of the staging table, from the columns the joins use only.

    A temporary table is never analyzed by autovacuum, and without statistics PostgreSQL
    plans the joins as if it were tiny; the text and JSON columns nothing joins on would
    double the time ANALYZE takes (1.5 s of a 100,000-row import measured).
    """
    if not is_postgres():
        return
    key = [k if k != "customer_id" else "customer_ext" for k in spec.key]
    if spec.customer_ref and "customer_ext" not in key:
        key.append("customer_ext")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {STAGING} (line, {', '.join(key)})")


def key_positions(spec: Spec) -> list[int]:
    """Where a staging tuple (line, the spec's columns..., extra) holds the rows' key."""
    names = ["customer_id" if c.name == "customer" else c.name for c in spec.columns]
    return [1 + names.index(k) for k in spec.key]


class KeyWatch:
    """Watches the keys of the rows on their way to staging: a file whose keys all differ
    needs no search for duplicates in SQL (nor the ANALYZE that plans it). Only hashes are
    kept, 8 bytes of set per row; two keys with the same hash count as a repeat, and SQL
    then finds whether they really are one."""

    def __init__(self, spec: Spec):
        self.positions = key_positions(spec)
        self.rows = 0
        self.repeated = False

    def watch(self, rows: Iterator[tuple]) -> Iterator[tuple]:
        seen: set[int] = set()
        add = seen.add
        positions = self.positions
        for row in rows:
            self.rows += 1
            if not self.repeated:
                key = hash(row[positions[0]] if len(positions) == 1 else tuple(row[p] for p in positions))
                if key in seen:
                    self.repeated = True
                    seen.clear()
                else:
                    add(key)
            yield row


def rejects_find(spec: Spec, sources: dict[str, str], rejects: RejectWriter, *, repeated_keys: bool = True) -> int:
    """Duplicates inside the file and unknown customers, found set-based: how many.

    `repeated_keys` False says the file holds no key twice (KeyWatch): no duplicate to
    look for, and a customers file then has nothing left to reject here.
    """
    if not repeated_keys and not spec.customer_ref:
        return 0
    with connection.cursor() as cursor:
        if spec.customer_ref:
            customers = Customer._meta.db_table
            cursor.execute(
                f"UPDATE {STAGING} SET customer_id = c.id FROM {customers} c "
                f"WHERE c.external_id = {STAGING}.customer_ext"
            )
            cursor.execute(
                f"UPDATE {STAGING} SET reject = 'unknown customer ''' || customer_ext || '''' "
                "WHERE customer_id IS NULL"
            )
        if repeated_keys:
            key = [k if k != "customer_id" else "customer_ext" for k in spec.key]
            keys = ", ".join(key)
            joined = " AND ".join(f"f.{k} = {STAGING}.{k}" for k in key)
            what = "external_id" if key == ["external_id"] else "event (same customer, kind and time)"
            cursor.execute(
                f"UPDATE {STAGING} SET reject = 'duplicate {what} in the file, first on line ' || f.first_line "
                f"FROM (SELECT {keys}, MIN(line) AS first_line FROM {STAGING} WHERE reject IS NULL "
                f"GROUP BY {keys} HAVING COUNT(*) > 1) f "
                f"WHERE {joined} AND {STAGING}.line <> f.first_line AND {STAGING}.reject IS NULL"
            )
        shown = [c.name if c.name != "customer" else "customer_ext" for c in spec.columns]
        cursor.execute(
            f"SELECT line, reject, extra, {', '.join(shown)} FROM {STAGING} WHERE reject IS NOT NULL ORDER BY line"
        )
        # Written under the file's own column names, like the rows rejected while parsing,
        # extra columns included: the rejects file is the row to fix and import again.
        labels = [sources.get(c.name, c.name) for c in spec.columns]
        found = 0
        while batch := cursor.fetchmany(2000):
            for line, reason, extra, *values in batch:
                record = _extra_as_text(extra) | dict(zip(labels, values))
                rejects.write(line, f"line {line}: {reason}", record)
            found += len(batch)
        if found:
            cursor.execute(f"DELETE FROM {STAGING} WHERE reject IS NOT NULL")
    return found


def _extra_as_text(extra: dict | str | None) -> dict:
    """The typed extra values as a file would spell them (JSON true, not Python's True)."""
    values = json.loads(extra) if isinstance(extra, str) else (extra or {})
    return {k: json.dumps(v) if isinstance(v, bool) else v for k, v in values.items()}


def staged_upsert(spec: Spec, sources: dict[str, str], *, into_empty: bool = False) -> tuple[int, int]:
    """One INSERT ... ON CONFLICT for the whole file: (rows created, rows created or changed).

    `into_empty`: the table is empty and locked, its unique constraints dropped for the
    load (see indexes.py), so every staged row is new and a plain INSERT writes them.
    """
    table = spec.model._meta.db_table
    pg = is_postgres()
    now = timezone.now()
    fields = [c.name for c in spec.columns if c.name != "customer"]
    if spec.customer_ref:
        fields.append("customer_id")
    # Only the columns the file has are overwritten; a file without emails keeps them.
    updated = [f for f in fields if f in sources and f not in spec.key]
    extra = spec.extra_column
    if pg:
        merged = f"{table}.{extra} || EXCLUDED.{extra}"
        extra_changed = f"NOT ({table}.{extra} @> EXCLUDED.{extra})"
    else:
        merged = f"json_patch({table}.{extra}, EXCLUDED.{extra})"
        extra_changed = f"json_patch({table}.{extra}, EXCLUDED.{extra}) <> json({table}.{extra})"
    set_clauses = [f"{f} = EXCLUDED.{f}" for f in updated] + [f"{extra} = {merged}"]
    changed = [f"{table}.{f} IS DISTINCT FROM EXCLUDED.{f}" for f in updated] + [extra_changed]
    insert_cols = fields + [extra]
    select_cols = fields + ["extra"]
    timestamps = spec.model is Customer
    if timestamps:
        set_clauses.append("updated_at = EXCLUDED.updated_at")
        insert_cols += ["created_at", "updated_at"]
        select_cols += ["%s", "%s"]
    params = [now, now] if timestamps else []
    conflict = ", ".join(spec.key)
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
    with connection.cursor() as cursor:
        if into_empty:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(insert_cols)}) SELECT {', '.join(select_cols)} FROM {STAGING}", params
            )
            return cursor.rowcount, cursor.rowcount
        cursor.execute(f"SELECT COUNT(*) FROM {STAGING} s WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {key_match})")
        created = cursor.fetchone()[0]
        # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(select_cols)} FROM {STAGING} WHERE true "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(set_clauses)} "
            f"WHERE {' OR '.join(changed)}",
            params,
        )
        return created, cursor.rowcount
