"""SQL shared by the report's queries: table names, JSON access spelled alike on PostgreSQL
and SQLite, the attribution-window condition and the per-unit order and event totals
(unit_totals) that outcomes.py aggregates for every metric of a report. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from core.db import db_datetime, is_postgres

from customers.models import Customer, Event, Order

from .models import Experiment, Exposure, Metric

EXPOSURE = Exposure._meta.db_table
CUSTOMER = Customer._meta.db_table
ORDER = Order._meta.db_table
EVENT = Event._meta.db_table
ORDER_SOURCES = {Metric.Source.ORDER_CONVERSION, Metric.Source.ORDER_REVENUE, Metric.Source.ORDER_COUNT}
EVENT_SOURCES = {Metric.Source.EVENT_CONVERSION, Metric.Source.EVENT_COUNT}
CUSTOMER_COLUMNS = ("country", "time_zone")  # breakdowns may use these besides attributes

Grouping = tuple[str, list, str]  # breakdown expression, its params, the join it needs
NO_GROUPING: Grouping = ("''", [], "")


# --------------------------------------------------------------------------- dialect


def json_key(key: str) -> str:
    # PostgreSQL's ->> takes the key; SQLite's JSON functions a path, quoted for any key.
    if is_postgres():
        return key
    return '$."' + key.replace('"', '""') + '"'


def json_text(column: str, key: str) -> tuple[str, list]:
    """SQL for the text of ``column``'s value at ``key``, spelled alike on both databases:
    SQLite's json_extract turns JSON true into 1, so booleans are spelled out by type."""
    path = json_key(key)
    if is_postgres():
        return f"({column} ->> %s)", [path]
    return (
        f"(CASE json_type({column}, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"ELSE CAST(json_extract({column}, %s) AS TEXT) END)",
        [path, path],
    )


def json_number(column: str, key: str) -> tuple[str, list]:
    if is_postgres():
        return f"CAST({column} ->> %s AS DOUBLE PRECISION)", [key]
    return f"CAST(json_extract({column}, %s) AS REAL)", [json_key(key)]


def filter_text(value) -> str:
    """A filter value as json_text spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def span_bounds(at: str, window: tuple[int, int],
                span: tuple[datetime | None, datetime | None]) -> tuple[str, list]:
    """``at`` within [first exposure + window[0] days, last exposure + window[1] days): constants,
    so the order and event indexes on time narrow millions of rows to the few in play
    before any join (without it, a million-unit report scans every order)."""
    start, end = window
    first, last = span
    if first is None:  # no exposures: nothing can match
        return "1 = 0", []
    low, high = first + timedelta(days=start), last + timedelta(days=end)
    if is_postgres():
        return f"{at} >= %s AND {at} < %s", [low, high]
    return f"{at} >= %s AND {at} < %s", [db_datetime(low), db_datetime(high)]


def exposure_window(at: str, window: tuple[int, int]) -> tuple[str, list]:
    """``at`` in [e.exposed_at + window[0] days, e.exposed_at + window[1] days): the unit's own window."""
    start, end = window
    if is_postgres():
        return (f"{at} >= e.exposed_at + %s * INTERVAL '1 day' AND {at} < e.exposed_at + %s * INTERVAL '1 day'",
                [start, end])
    return (f"julianday({at}) >= julianday(e.exposed_at) + %s AND julianday({at}) < julianday(e.exposed_at) + %s",
            [start, end])


def one_instant(span: tuple[datetime | None, datetime | None]) -> datetime | None:
    """The instant every exposure shares, if they all share one (a campaign launch exposes its
    whole audience at once), else None."""
    first, last = span
    return first if first is not None and first == last else None


def unit_window(at: str, window: tuple[int, int], span) -> tuple[str, list]:
    """``at`` in the unit's own window, for a row already within span_bounds.

    When every exposure shares one instant, span_bounds is each unit's own window exactly:
    all that is left to say is that the unit was exposed at that instant (a constant test on
    the exposure row, none on the joined pair), so the join is on the customer alone and the
    planner can pick its join and grouping freely. An exposure written after the span was
    read, at another instant, then counts no outcomes yet, as one outside the span would."""
    instant = one_instant(span)
    if instant is not None:
        return "e.exposed_at = %s", [db_datetime(instant)]
    return exposure_window(at, window)


def in_window(at: str, window: tuple[int, int], span: tuple[datetime | None, datetime | None]) -> tuple[str, list]:
    """``at`` in the unit's window, also bounded by constants from the first and last exposure."""
    bounds, bound_params = span_bounds(at, window, span)
    if not bound_params:
        return bounds, []
    own, own_params = unit_window(at, window, span)
    return f"{bounds} AND {own}", bound_params + own_params


def arm_filter(arm_ids: list[int] | None) -> tuple[str, list]:
    if not arm_ids:
        return "", []
    return f" AND e.arm_id IN ({', '.join(['%s'] * len(arm_ids))})", list(arm_ids)


def fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@dataclass(frozen=True)
class Part:
    """A per-unit total: orders (counted, or their amounts) or events of a kind in the
    window. A plain metric has one part, a ratio two (numerator, denominator)."""

    source: str
    event_kind: str = ""
    order_filter: tuple[tuple[str, object], ...] = ()  # sorted (key, value) pairs: parts compare and hash

    @property
    def filters(self) -> dict:
        return dict(self.order_filter)


FLOAT = "DOUBLE PRECISION"  # SQLite reads it as REAL


def order_value(metric: Metric | Part) -> tuple[str, list]:
    """Per-order contribution of a metric: 1 for counting, the amount for revenue."""
    conditions, params = [], []
    filters = metric.filters if isinstance(metric, Part) else metric.order_filter
    for key, value in sorted(filters.items()):
        text, text_params = json_text("o.properties", key)
        conditions.append(f"{text} = %s")
        params += text_params + [filter_text(value)]
    value = "CAST(o.amount AS DOUBLE PRECISION)" if metric.source == Metric.Source.ORDER_REVENUE else "1"
    if not conditions:
        return value, params
    return f"CASE WHEN {' AND '.join(conditions)} THEN {value} ELSE 0 END", params


def unit_totals(
    experiment: Experiment, parts: list[Part], window: tuple[int, int], span,
    grouping: Grouping = NO_GROUPING, arm_ids: list[int] | None = None,
) -> tuple[str, list]:
    """SQL (and params) of every part's per-unit total in one pass, for the units with any
    matching order or event: exposure_id, arm_id, grp, c0, c1, ... (floats, 0 where none).

    The orders and events in play (bounded by the span through their time indexes) are
    stacked into one row set with a column per part, joined to the exposures once, and
    summed per unit once: the cost of a report is one join and one grouping whatever its
    number of metrics. Floats throughout: a bigint total would make PostgreSQL's AVG and
    VAR_SAMP compute in numeric, several times slower."""
    branches, branch_params = [], []
    order_parts = [i for i, p in enumerate(parts) if p.source in ORDER_SOURCES]
    event_parts = [i for i, p in enumerate(parts) if p.source in EVENT_SOURCES]
    if order_parts:
        columns, params = [], []
        for i, part in enumerate(parts):
            if i in order_parts:
                value, value_params = order_value(part)
                columns.append(f"CAST({value} AS {FLOAT}) AS c{i}")
                params += value_params
            else:
                columns.append(f"CAST(0 AS {FLOAT}) AS c{i}")
        bounds, bound_params = span_bounds("o.ordered_at", window, span)
        branches.append(f"SELECT o.customer_id AS customer_id, o.ordered_at AS at, {', '.join(columns)} "
                        f"FROM {ORDER} o WHERE {bounds}")
        branch_params += params + bound_params
    if event_parts:
        columns, params = [], []
        for i, part in enumerate(parts):
            if i in event_parts:
                columns.append(f"CAST(CASE WHEN ev.kind = %s THEN 1 ELSE 0 END AS {FLOAT}) AS c{i}")
                params.append(part.event_kind)
            else:
                columns.append(f"CAST(0 AS {FLOAT}) AS c{i}")
        kinds = sorted({parts[i].event_kind for i in event_parts})
        bounds, bound_params = span_bounds("ev.occurred_at", window, span)
        branches.append(f"SELECT ev.customer_id AS customer_id, ev.occurred_at AS at, {', '.join(columns)} "
                        f"FROM {EVENT} ev WHERE ev.kind IN ({', '.join(['%s'] * len(kinds))}) AND {bounds}")
        branch_params += params + kinds + bound_params
    group, group_params, group_join = grouping
    own, own_params = unit_window("x.at", window, span)
    arm_sql, arm_params = arm_filter(arm_ids)
    sums = ", ".join(f"SUM(x.c{i}) AS c{i}" for i in range(len(parts)))
    sql = (
        f"SELECT e.id AS exposure_id, e.arm_id AS arm_id, {group} AS grp, {sums} "
        f"FROM {EXPOSURE} e {group_join} JOIN ({' UNION ALL '.join(branches)}) x "
        f"ON x.customer_id = e.customer_id AND {own} "
        f"WHERE e.experiment_id = %s{arm_sql} GROUP BY 1, 2, 3"
    )
    return sql, group_params + branch_params + own_params + [experiment.id] + arm_params
