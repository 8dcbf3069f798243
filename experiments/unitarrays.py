"""Per-unit order and event totals as numpy arrays: a customer experiment's arm sums and
its units' first returns without a join or a grouping in the database. Reads only.

unitsql.unit_totals joins the orders and events in play to the exposures and sums them per
unit in SQL. At 1,000,000 exposures and ~755,000 orders and visits that join and its two
groupings (per unit, then per arm) took most of a report's time, much of it in the
parallel plan's leader alone, finalizing half a million per-unit groups (EXPLAIN ANALYZE:
~1.1 of 2.4 s). Here the database only reads: the exposures' (customer, arm, time) and
the orders' and events' (customer, time, value) within the span, each column packed into
one binary string (string_agg of int8send: a few MB in one row, no per-row round trip), the
exposures on a connection of their own meanwhile (core.db.alongside). numpy then finds each
row's unit by binary search over the exposures sorted by customer, keeps the rows inside
that unit's own window, and sums per unit with bincount. experiment_bench at 1M, load 3.5-4.5:
metrics 2.6-3.4 s -> 0.74-0.85 s (0.76 -> 0.26-0.30 of the hand-written SQL).

Survival data's returners the same way (first_returns: each unit's first order or event at or
after its exposure, by np.minimum.at), reading the exposures once with the metrics.

The same numbers as the SQL (tests/experiments/test_unitarrays.py checks them against each
other: every metric kind, one instant and exposures over days, orders and events). Used for
a whole experiment's arm sums and survival data; breakdowns and per-unit frames keep the SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import psycopg
from django.db import connection

from core.db import alongside, db_datetime, is_postgres

from .models import Experiment
from .unitsql import (EVENT, EVENT_SOURCES, EXPOSURE, FLOAT, ORDER, ORDER_SOURCES, Part, one_instant, order_value,
                      span_bounds)

# Past this many rows in one read (exposures, or orders and events in play) a report keeps to
# SQL: the arrays hold 16-32 bytes a row in the worker, and one packed column stays far below
# PostgreSQL's 1 GB per value.
MAX_ROWS = 5_000_000
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
# PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)

# Column types: a packed big-endian int8 or float8, or a timestamp as int8 microseconds.
INT, NUMBER, TIME = "int", "float", "time"
_SEND = {INT: "int8send", NUMBER: "float8send", TIME: "timestamptz_send"}
_DTYPE = {INT: ">i8", NUMBER: ">f8", TIME: ">i8"}


@dataclass
class UnitArrays:
    """One entry per unit with any order or event in its own window (the units unit_totals
    gives rows for): its arm, and per part its total there."""

    arm_ids: np.ndarray
    totals: list[np.ndarray]
    units: dict[int, int]  # every exposed unit, with an order or event or not, per arm


def columns_fetch(sql: str, params: list, types: list[str]) -> list[np.ndarray] | None:
    """The columns of ``sql``'s rows as arrays, in row order, or None past MAX_ROWS rows (the
    caller then keeps to SQL). No column may be NULL.

    PostgreSQL packs each column into one bytea (string_agg over one scan, so every column
    sees the rows in the same order) and sends it in binary; SQLite's rows come one by one."""
    sql = f"{sql} LIMIT {int(MAX_ROWS) + 1}"
    if not is_postgres():
        columns = _columns_from_rows(_rows(sql, params), types)
        return None if columns[0].size > MAX_ROWS else columns
    aggregates = ", ".join(f"string_agg({_SEND[t]}(s.c{i}), '')" for i, t in enumerate(types))
    names = ", ".join(f"c{i}" for i in range(len(types)))
    connection.ensure_connection()
    # psycopg's own cursor on Django's connection (same session and transaction): Django's
    # client-side-binding cursor cannot ask for binary results, and in text a bytea is sent
    # as hex, twice the bytes, encoded and decoded.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"SELECT {aggregates} FROM ({sql}) AS s ({names})", params, binary=True)
        packed = cursor.fetchone()
    columns = [np.frombuffer(b or b"", dtype=_DTYPE[t]).astype(np.int64 if t != NUMBER else float)
               for b, t in zip(packed, types)]
    return None if columns[0].size > MAX_ROWS else columns


def _rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _columns_from_rows(rows: list[tuple], types: list[str]) -> list[np.ndarray]:
    columns = list(zip(*rows)) if rows else [()] * len(types)
    out = []
    for values, t in zip(columns, types):
        if t == TIME:
            out.append(np.array([_micros(v) for v in values], dtype=np.int64))
        else:
            out.append(np.array(values, dtype=np.int64 if t == INT else float))
    return out


def _micros(value) -> int:
    """A database time as int8 microseconds since 2000-01-01 UTC (SQLite: naive is UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt_timezone.utc)
    return (value - PG_EPOCH) // timedelta(microseconds=1)


@dataclass
class Exposed:
    """An experiment's exposures with a customer and a time, sorted by customer: arm and
    exposure time (int8 microseconds; None when they all share one instant) of each."""

    customers: np.ndarray
    arm_ids: np.ndarray
    exposed_at: np.ndarray | None

    @property
    def size(self) -> int:
        return int(self.customers.size)

    def units_of(self, customers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``customers``, the index of its unit (meaningful where found) and
        whether it has one."""
        if not self.size or not customers.size:
            return np.zeros(customers.size, dtype=np.int64), np.zeros(customers.size, dtype=bool)
        unit = np.minimum(np.searchsorted(self.customers, customers), self.size - 1)
        return unit, self.customers[unit] == customers


class ExposedRead:
    """One read of an experiment's exposures within ``span``, on a connection of its own
    (core.db.alongside), started by the first ``start`` and shared by every caller: a report
    reads them once for its metrics and its survival data, which run in two threads.
    Calling it waits for them: None when a customer has two exposures (never for exposures
    written by this app: a customer experiment's unit is the customer) or past MAX_ROWS."""

    def __init__(self, experiment: Experiment, span):
        self.experiment_id, self.span = experiment.id, span
        self._lock = threading.Lock()
        self._later: Callable[[], Exposed | None] | None = None

    def start(self) -> ExposedRead:
        with self._lock:
            if self._later is None:
                self._later = alongside(self._read)
        return self

    def __call__(self) -> Exposed | None:
        return self.start()._later()

    def _read(self) -> Exposed | None:
        instant = one_instant(self.span)
        where, params = "e.experiment_id = %s AND e.customer_id IS NOT NULL", [self.experiment_id]
        if instant is not None:
            # Every exposure at one instant: no time to read, the span bounds are each unit's
            # window (unitsql.unit_window).
            sql, types = (f"SELECT e.customer_id, e.arm_id FROM {EXPOSURE} e WHERE {where} AND e.exposed_at = %s",
                          [INT, INT])
            params.append(db_datetime(instant))
        else:
            sql, types = (f"SELECT e.customer_id, e.arm_id, e.exposed_at FROM {EXPOSURE} e WHERE {where} "
                          f"AND e.exposed_at IS NOT NULL", [INT, INT, TIME])
        columns = columns_fetch(sql, params, types)
        if columns is None:
            return None
        customers, arm_ids, *exposed_at = columns
        order = np.argsort(customers, kind="stable")
        customers = customers[order]
        if customers.size > 1 and not np.all(customers[1:] != customers[:-1]):
            return None
        return Exposed(customers, arm_ids[order], exposed_at[0][order] if exposed_at else None)


def unit_arrays(experiment: Experiment, parts: list[Part], window: tuple[int, int], span,
                exposed: ExposedRead | None = None) -> UnitArrays | None:
    """Every part's per-unit total for the units with any order or event in their own window
    (None as ExposedRead says, or past MAX_ROWS). ``exposed``: a read of the same span's
    exposures to share."""
    exposed_later = (exposed or ExposedRead(experiment, span)).start()
    fetched = [(columns_fetch(sql, params, types), columns)
               for sql, params, types, columns in _branches(parts, window, span, timed=one_instant(span) is None)]
    exposed = exposed_later()
    if exposed is None or any(values is None for values, _ in fetched):
        return None
    n = exposed.size
    totals = [np.zeros(n) for _ in parts]
    present = np.zeros(n, dtype=bool)
    for values, columns in fetched:
        unit, keep = exposed.units_of(values[0])
        if exposed.exposed_at is not None:
            at, since = values[1], exposed.exposed_at[unit]
            keep &= (at >= since + window[0] * DAY_US) & (at < since + window[1] * DAY_US)
        unit = unit[keep]
        present[unit] = True
        for i, column in columns.items():
            weights = None if column is None else values[column][keep]
            totals[i] += np.bincount(unit, weights=weights, minlength=n)
    arms, counts = np.unique(exposed.arm_ids, return_counts=True)
    return UnitArrays(arm_ids=exposed.arm_ids[present], totals=[t[present] for t in totals],
                      units=dict(zip(arms.tolist(), counts.tolist())))


def first_returns(experiment: Experiment, span, now: datetime, table: str, at: str, kind_sql: str,
                  kind_params: list, exposed: ExposedRead | None = None) -> list[tuple] | None:
    """survival.survival_data's units that returned, from arrays: by (arm, hours from exposure
    to the first order or event at or after it, rounded up, whole hours observed to ``now``),
    with their count. None as ExposedRead says, or past MAX_ROWS."""
    first, _ = span
    exposed_later = (exposed or ExposedRead(experiment, span)).start()
    fetched = columns_fetch(
        f"SELECT f.customer_id, f.{at} FROM {table} f WHERE f.{at} >= %s AND f.{at} <= %s{kind_sql}",
        [db_datetime(first), db_datetime(now), *kind_params], [INT, TIME])
    exposed = exposed_later()
    if exposed is None or fetched is None:
        return None
    customers, times = fetched
    since = exposed.exposed_at if exposed.exposed_at is not None else np.full(exposed.size, _micros(first))
    unit, keep = exposed.units_of(customers)
    keep &= times >= since[unit]
    keep &= since[unit] <= _micros(now)
    unit, times = unit[keep], times[keep]
    never = np.iinfo(np.int64).max
    returned = np.full(exposed.size, never)
    np.minimum.at(returned, unit, times)
    back = returned != never
    since = since[back]
    return _counted(exposed.arm_ids[back], -((since - returned[back]) // HOUR_US), (_micros(now) - since) // HOUR_US)


def everyone_counted(exposed: Exposed, first: datetime, now: datetime) -> list[tuple]:
    """survival.survival_data's census from arrays: every unit exposed by ``now``, by (arm,
    whole hours observed to ``now``), with its count; the units first_returns counted are
    among them."""
    since = exposed.exposed_at if exposed.exposed_at is not None else np.full(exposed.size, _micros(first))
    seen = since <= _micros(now)
    return _counted(exposed.arm_ids[seen], (_micros(now) - since[seen]) // HOUR_US)


def _counted(arm_ids: np.ndarray, *hours: np.ndarray) -> list[tuple]:
    """The distinct (arm, hours...) rows with how many units each stands for, as SQL's GROUP BY
    gives them: one sort of one int64 key per unit (hours are non-negative and under 2**26,
    7,600 years; arms are numbered by their place among the arm ids)."""
    if not arm_ids.size:
        return []
    arms, key = np.unique(arm_ids, return_inverse=True)
    for h in hours:
        key = (key << 26) | h
    keys, counts = np.unique(key, return_counts=True)
    columns = []
    for _ in hours:
        columns.append(keys & ((1 << 26) - 1))
        keys = keys >> 26
    return list(zip(arms[keys].tolist(), *(c.tolist() for c in reversed(columns)), counts.tolist()))


def _branches(parts: list[Part], window: tuple[int, int], span, *, timed: bool) -> list[tuple[str, list, list, dict]]:
    """(SQL, params, column types, {part index: value column or None to count rows}) of the
    orders and of the events in play: customer, time (when windows differ per unit), values."""
    branches = []
    order_parts = [i for i, p in enumerate(parts) if p.source in ORDER_SOURCES]
    if order_parts:
        select, params, types, columns = ["o.customer_id"], [], [INT], {}
        if timed:
            select.append("o.ordered_at"), types.append(TIME)
        for i in order_parts:
            value, value_params = order_value(parts[i])
            if value == "1":
                columns[i] = None
                continue
            columns[i] = len(select)
            select.append(f"CAST({value} AS {FLOAT})"), types.append(NUMBER)
            params += value_params
        bounds, bound_params = span_bounds("o.ordered_at", window, span)
        branches.append((f"SELECT {', '.join(select)} FROM {ORDER} o WHERE {bounds}", params + bound_params, types,
                         columns))
    event_parts = [i for i, p in enumerate(parts) if p.source in EVENT_SOURCES]
    if event_parts:
        select, params, types, columns = ["ev.customer_id"], [], [INT], {}
        if timed:
            select.append("ev.occurred_at"), types.append(TIME)
        kinds = sorted({parts[i].event_kind for i in event_parts})
        for i in event_parts:
            if len(kinds) == 1:
                columns[i] = None
            else:
                columns[i] = len(select)
                select.append(f"CAST(CASE WHEN ev.kind = %s THEN 1 ELSE 0 END AS {FLOAT})"), types.append(NUMBER)
                params.append(parts[i].event_kind)
        bounds, bound_params = span_bounds("ev.occurred_at", window, span)
        branches.append((f"SELECT {', '.join(select)} FROM {EVENT} ev "
                         f"WHERE ev.kind IN ({', '.join(['%s'] * len(kinds))}) AND {bounds}",
                         params + kinds + bound_params, types, columns))
    return branches
