"""Outcomes per arm, computed in SQL. Reads only.

A report needs, per arm (and per breakdown group), the unit count and for each metric the
sum and the sum of squares of the per-unit values: that is all the statistics need
(stats.Moments.from_sums), and the database computes it in one pass whatever the size.

Per-unit values: for customer exposures a unit's value is its orders (or events) in the
attribution window [exposed_at, exposed_at + attribution_days); a unit with none is 0, so
only the units that have some are aggregated per unit and the zeros come from the count.
For imported exposures the value is in the exposure row's ``outcomes``.

Per-unit arrays are fetched only where a method needs them (CUPED, uplift); survival data
come back already grouped by arm and hour (survival.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from django.db import connection
from django.db.models import Max, Min

from core.db import db_datetime, is_postgres

from customers.models import Customer, Event, Order

from .kinds import kind_get, sql_fill
from .models import Experiment, Exposure, Metric

EXPOSURE = Exposure._meta.db_table
CUSTOMER = Customer._meta.db_table
ORDER = Order._meta.db_table
EVENT = Event._meta.db_table
ORDER_SOURCES = {Metric.Source.ORDER_CONVERSION, Metric.Source.ORDER_REVENUE, Metric.Source.ORDER_COUNT}
EVENT_SOURCES = {Metric.Source.EVENT_CONVERSION, Metric.Source.EVENT_COUNT}
CUSTOMER_COLUMNS = ("country", "time_zone")  # breakdowns may use these besides attributes


@dataclass
class Sums:
    """n units; per metric name, the aggregates of the per-unit values its kind names
    (experiments.kinds: sum and sum of squares for binary and continuous)."""

    n: int = 0
    metrics: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def add(self, name: str, values: Sequence[float | None]) -> None:
        old = self.metrics.get(name, (0.0,) * len(values))
        self.metrics[name] = tuple(t + float(v or 0) for t, v in zip(old, values))


def _aggregates(metric: Metric, values: list[tuple[str, list]]) -> tuple[list[str], list]:
    """The SQL aggregates of ``metric``'s kind over its unit value expressions, and their params."""
    filled = [sql_fill(a, values) for a in kind_get(metric.kind).aggregates]
    return [sql for sql, _ in filled], [p for _, params in filled for p in params]


Grouping = tuple[str, list, str]  # breakdown expression, its params, the join it needs
NO_GROUPING: Grouping = ("''", [], "")


# --------------------------------------------------------------------------- dialect


def _json_key(key: str) -> str:
    # PostgreSQL's ->> takes the key; SQLite's JSON functions a path, quoted for any key.
    if is_postgres():
        return key
    return '$."' + key.replace('"', '""') + '"'


def _json_text(column: str, key: str) -> tuple[str, list]:
    """SQL for the text of ``column``'s value at ``key``, spelled alike on both databases:
    SQLite's json_extract turns JSON true into 1, so booleans are spelled out by type."""
    path = _json_key(key)
    if is_postgres():
        return f"({column} ->> %s)", [path]
    return (
        f"(CASE json_type({column}, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        f"ELSE CAST(json_extract({column}, %s) AS TEXT) END)",
        [path, path],
    )


def _json_number(column: str, key: str) -> tuple[str, list]:
    if is_postgres():
        return f"CAST({column} ->> %s AS DOUBLE PRECISION)", [key]
    return f"CAST(json_extract({column}, %s) AS REAL)", [_json_key(key)]


def filter_text(value) -> str:
    """A filter value as _json_text spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def exposure_span(experiment: Experiment) -> tuple[datetime | None, datetime | None]:
    """First and last exposure time (an index lookup on (experiment, exposed_at))."""
    span = Exposure.objects.filter(experiment=experiment).aggregate(first=Min("exposed_at"), last=Max("exposed_at"))
    return span["first"], span["last"]


def _in_window(at: str, window: tuple[int, int], span: tuple[datetime | None, datetime | None]) -> tuple[str, list]:
    """``at`` in [exposed_at + window[0] days, exposed_at + window[1] days).

    Also bounded by constants from the first and last exposure: a campaign's exposures
    span hours or days, so the order and event indexes on time narrow millions of rows to
    the few in play before any join (without it, a million-unit report scans every order)."""
    start, end = window
    first, last = span
    if first is None:  # no exposures: nothing can match
        return "1 = 0", []
    low, high = first + timedelta(days=start), last + timedelta(days=end)
    if is_postgres():
        return (
            f"{at} >= %s AND {at} < %s AND "
            f"{at} >= e.exposed_at + %s * INTERVAL '1 day' AND {at} < e.exposed_at + %s * INTERVAL '1 day'",
            [low, high, start, end],
        )
    return (
        f"{at} >= %s AND {at} < %s AND "
        f"julianday({at}) >= julianday(e.exposed_at) + %s AND julianday({at}) < julianday(e.exposed_at) + %s",
        [db_datetime(low), db_datetime(high), start, end],
    )


def _group_sql(experiment: Experiment, by: str | None) -> tuple[str, list, str]:
    """(expression, params, join) for the breakdown group; a constant without one."""
    if not by:
        return "''", [], ""
    if experiment.source == Experiment.Source.IMPORTED:
        sql, params = _json_text("e.attributes", by)
        return sql, params, ""
    join = f"JOIN {CUSTOMER} c ON c.id = e.customer_id"
    if by in CUSTOMER_COLUMNS:
        return f"c.{by}", [], join
    sql, params = _json_text("c.attributes", by)
    return sql, params, join


def _arm_filter(arm_ids: list[int] | None) -> tuple[str, list]:
    if not arm_ids:
        return "", []
    return f" AND e.arm_id IN ({', '.join(['%s'] * len(arm_ids))})", list(arm_ids)


def fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def group_label(value) -> str:
    if value is None:
        return "(none)"
    return str(value)


# --------------------------------------------------------------------------- sums


def arm_sums(
    experiment: Experiment, metrics: list[Metric], *, by: str | None = None
) -> dict[tuple[str, int], Sums]:
    """{(group, arm id): Sums} for every arm with units; group is "" without ``by``."""
    group, group_params, join = _group_sql(experiment, by)
    out: dict[tuple[str, int], Sums] = defaultdict(Sums)
    imported = [m for m in metrics if m.source == Metric.Source.IMPORTED]
    columns, params, widths = [], list(group_params), []
    for metric in imported:
        parts = [_json_number("e.outcomes", key) for key in kind_get(metric.kind).columns(metric.name)]
        aggregates, aggregate_params = _aggregates(metric, parts)
        columns += aggregates
        widths.append(len(aggregates))
        params += aggregate_params
    sql = (
        f"SELECT {group} AS grp, e.arm_id, COUNT(*){''.join(', ' + c for c in columns)} "
        f"FROM {EXPOSURE} e {join} WHERE e.experiment_id = %s GROUP BY 1, 2"
    )
    for grp, arm_id, n, *values in fetch(sql, params + [experiment.id]):
        sums = out[(group_label(grp), arm_id)]
        sums.n += n
        _add_values(sums, imported, widths, values)

    if experiment.source == Experiment.Source.CUSTOMERS:
        window = (0, experiment.attribution_days)
        span = exposure_span(experiment)
        for builder, sources in ((_per_unit_orders, ORDER_SOURCES), (_per_unit_events, EVENT_SOURCES)):
            chosen = [m for m in metrics if m.source in sources]
            if not chosen:
                continue
            if all(kind_get(m.kind).share for m in chosen):
                for metric in chosen:
                    sql, sql_params = _converters(experiment, metric, window, span, (group, group_params, join))
                    width = len(kind_get(metric.kind).aggregates)
                    # A share's unit values are 0 or 1: every aggregate of them is the count of ones.
                    for grp, arm_id, converted in fetch(sql, sql_params):
                        out[(group_label(grp), arm_id)].add(metric.name, (converted,) * width)
                continue
            inner, inner_params = builder(experiment, chosen, window, span, (group, group_params, join))
            outer = [_aggregates(m, [(_unit_level(m, f"u.m{i}"), [])])[0] for i, m in enumerate(chosen)]
            rows = fetch(f"SELECT u.grp, u.arm_id, {', '.join(sum(outer, []))} FROM ({inner}) u GROUP BY 1, 2",
                          inner_params)
            for grp, arm_id, *values in rows:
                _add_values(out[(group_label(grp), arm_id)], chosen, [len(o) for o in outer], values)
    return dict(out)


def _add_values(sums: Sums, metrics: list[Metric], widths: list[int], values: Sequence) -> None:
    start = 0
    for metric, width in zip(metrics, widths):
        sums.add(metric.name, values[start:start + width])
        start += width


def _converters(experiment: Experiment, metric: Metric, window: tuple[int, int], span,
                grouping: Grouping) -> tuple[str, list]:
    """Units with at least one matching order or event, per group and arm.

    A semi-join: whether a unit converted needs no per-unit totals, and skipping them is
    what keeps a million units with frequent events (visits) well under a second."""
    group, group_params, join = grouping
    if metric.source in ORDER_SOURCES:
        condition, window_params = _in_window("o.ordered_at", window, span)
        value, value_params = _order_value(metric)
        matched = f"SELECT 1 FROM {ORDER} o WHERE o.customer_id = e.customer_id AND {condition}"
        params = window_params
        if value_params:  # an order filter: only orders with those properties count
            matched += f" AND ({value}) > 0"
            params = window_params + value_params
    else:
        condition, window_params = _in_window("ev.occurred_at", window, span)
        matched = (f"SELECT 1 FROM {EVENT} ev WHERE ev.customer_id = e.customer_id AND ev.kind = %s "
                   f"AND {condition}")
        params = [metric.event_kind] + window_params
    sql = (f"SELECT {group} AS grp, e.arm_id, COUNT(*) FROM {EXPOSURE} e {join} "
           f"WHERE e.experiment_id = %s AND EXISTS ({matched}) GROUP BY 1, 2")
    return sql, group_params + [experiment.id] + params


def _unit_level(metric: Metric, column: str) -> str:
    """A unit's value from its per-unit total, as its kind says (conversions are 0/1)."""
    return sql_fill(kind_get(metric.kind).unit_value_sql, [(column, [])])[0]


def _order_value(metric: Metric) -> tuple[str, list]:
    """Per-order contribution of a metric: 1 for counting, the amount for revenue."""
    conditions, params = [], []
    for key, value in sorted(metric.order_filter.items()):
        text, text_params = _json_text("o.properties", key)
        conditions.append(f"{text} = %s")
        params += text_params + [filter_text(value)]
    value = "CAST(o.amount AS DOUBLE PRECISION)" if metric.source == Metric.Source.ORDER_REVENUE else "1"
    if not conditions:
        return value, params
    return f"CASE WHEN {' AND '.join(conditions)} THEN {value} ELSE 0 END", params


def _per_unit_orders(
    experiment: Experiment, metrics: list[Metric], window: tuple[int, int], span,
    grouping: Grouping = NO_GROUPING, arm_ids: list[int] | None = None,
) -> tuple[str, list]:
    """SQL (and params) of per-unit order totals, m0, m1, ... for the units that have any
    order in the window: exposure_id, arm_id, grp, m0..."""
    values, value_params = [], []
    for i, metric in enumerate(metrics):
        value, params = _order_value(metric)
        values.append(f"SUM({value}) AS m{i}")
        value_params += params
    condition, window_params = _in_window("o.ordered_at", window, span)
    join = f"JOIN {ORDER} o ON o.customer_id = e.customer_id AND {condition}"
    return _per_unit(experiment, values, value_params, join, window_params, grouping, arm_ids)


def _per_unit_events(
    experiment: Experiment, metrics: list[Metric], window: tuple[int, int], span,
    grouping: Grouping = NO_GROUPING, arm_ids: list[int] | None = None,
) -> tuple[str, list]:
    values = [f"SUM(CASE WHEN ev.kind = %s THEN 1 ELSE 0 END) AS m{i}" for i in range(len(metrics))]
    kinds = sorted({m.event_kind for m in metrics})
    condition, window_params = _in_window("ev.occurred_at", window, span)
    join = (f"JOIN {EVENT} ev ON ev.customer_id = e.customer_id "
            f"AND ev.kind IN ({', '.join(['%s'] * len(kinds))}) AND {condition}")
    return _per_unit(experiment, values, [m.event_kind for m in metrics], join, kinds + window_params,
                     grouping, arm_ids)


def _per_unit(experiment: Experiment, values: list[str], value_params: list, join: str, join_params: list,
              grouping: Grouping, arm_ids: list[int] | None) -> tuple[str, list]:
    group, group_params, group_join = grouping
    arm_sql, arm_params = _arm_filter(arm_ids)
    sql = (
        f"SELECT e.id AS exposure_id, e.arm_id AS arm_id, {group} AS grp, {', '.join(values)} "
        f"FROM {EXPOSURE} e {group_join} {join} WHERE e.experiment_id = %s{arm_sql} GROUP BY 1, 2, 3"
    )
    return sql, group_params + value_params + join_params + [experiment.id] + arm_params


def open_windows(experiment: Experiment, now: datetime) -> int:
    """Customer exposures whose attribution window has not closed: outcomes still coming."""
    if experiment.source != Experiment.Source.CUSTOMERS:
        return 0
    return Exposure.objects.filter(
        experiment=experiment, exposed_at__gt=now - timedelta(days=experiment.attribution_days)
    ).count()


# --------------------------------------------------------------------------- per unit


def unit_values(
    experiment: Experiment,
    metrics: list[Metric],
    *,
    arm_ids: list[int] | None = None,
    window: tuple[int, int] | None = None,
    attributes: bool = False,
) -> pd.DataFrame:
    """One row per exposure (index exposure_id): arm_id, unit, customer_id, a column per
    metric and, with ``attributes``, the unit's attributes as a dict column.

    ``window`` (days relative to exposure) defaults to the attribution window; CUPED asks
    for the pre-period (-attribution_days, 0) of the same metrics.
    """
    window = window or (0, experiment.attribution_days)
    arm_sql, arm_params = _arm_filter(arm_ids)
    imported = [m for m in metrics if m.source == Metric.Source.IMPORTED]
    select = ["e.id", "e.arm_id", "e.unit", "e.customer_id"] + (["e.attributes"] if attributes else [])
    params: list = []
    for metric in imported:
        value, value_params = _json_number("e.outcomes", metric.name)
        select.append(value)
        params += value_params
    sql = f"SELECT {', '.join(select)} FROM {EXPOSURE} e WHERE e.experiment_id = %s{arm_sql} ORDER BY e.id"
    columns = ["exposure_id", "arm_id", "unit", "customer_id"] + (["attributes"] if attributes else [])
    frame = pd.DataFrame.from_records(
        fetch(sql, params + [experiment.id] + arm_params), columns=columns + [m.name for m in imported]
    ).set_index("exposure_id")
    if attributes:
        frame["attributes"] = frame["attributes"].map(_as_dict)

    if experiment.source == Experiment.Source.CUSTOMERS:
        span = exposure_span(experiment)
        for builder, sources in ((_per_unit_orders, ORDER_SOURCES), (_per_unit_events, EVENT_SOURCES)):
            chosen = [m for m in metrics if m.source in sources]
            if not chosen:
                continue
            inner, inner_params = builder(experiment, chosen, window, span, NO_GROUPING, arm_ids)
            levels = ", ".join(_unit_level(m, f"u.m{i}") for i, m in enumerate(chosen))
            found = fetch(f"SELECT u.exposure_id, {levels} FROM ({inner}) u", inner_params)
            names = [m.name for m in chosen]
            per_unit = pd.DataFrame.from_records(found, columns=["exposure_id", *names]).set_index("exposure_id")
            frame = frame.join(per_unit.astype(float), how="left")
            frame[names] = frame[names].fillna(0.0)
    for metric in metrics:
        frame[metric.name] = pd.to_numeric(frame[metric.name], errors="coerce").astype(float)
    return frame


def unit_covariate(experiment: Experiment, column: str) -> pd.Series:
    """A numeric unit attribute per exposure id (NaN where missing): CUPED's covariate."""
    value, params = _json_number("e.attributes", column)
    rows = fetch(f"SELECT e.id, {value} FROM {EXPOSURE} e WHERE e.experiment_id = %s", params + [experiment.id])
    series = pd.Series({i: v for i, v in rows}, dtype=float)
    series.index.name = "exposure_id"
    return series


def _as_dict(value) -> dict:
    # psycopg decodes jsonb; SQLite hands back the text.
    if isinstance(value, dict):
        return value
    if value in (None, ""):
        return {}
    return json.loads(value)
