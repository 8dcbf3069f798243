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

A whole customer experiment (no breakdown) is summed in numpy instead, from its exposures
and the orders and events in play read as packed columns (unitarrays.py): the same sums,
without the database's join and per-unit grouping, the costliest part of a large report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from .kinds import RATIO, kind_get, sql_fill
from .models import MAX_ATTRIBUTION_DAYS, MIN_ATTRIBUTION_DAYS, Experiment, Exposure, Metric
from .breakdowns import segment_by
from .selectors import exposure_span
from .ratios import metric_parts
from . import unitarrays
from .unitsql import (CUSTOMER, CUSTOMER_COLUMNS, EVENT, EVENT_SOURCES, EXPOSURE, NO_GROUPING, ORDER, ORDER_SOURCES,
                      Grouping, arm_filter,
                      fetch, in_window, json_number, json_text, order_value, unit_totals)



@dataclass
class Sums:
    """n units; per metric name, the aggregates of the per-unit values its kind names
    (experiments.kinds: sum and sum of squares for binary and continuous)."""

    n: int = 0
    metrics: dict[str, tuple[float, ...]] = field(default_factory=dict)

    def add(self, name: str, values: Sequence[float | None]) -> None:
        # One row per (group, arm) and metric: aggregates such as AVG and VAR_SAMP do not add up.
        self.metrics[name] = tuple(None if v is None else float(v) for v in values)


def _aggregates(metric: Metric, values: list[tuple[str, list]]) -> tuple[list[str], list]:
    """The SQL aggregates of ``metric``'s kind over its unit value expressions, and their params."""
    filled = [sql_fill(a, values) for a in kind_get(metric.kind).aggregates]
    return [sql for sql, _ in filled], [p for _, params in filled for p in params]


def window_days(experiment: Experiment) -> int:
    """The attribution window, within the bounds the model now enforces: a row stored before
    the bound (a million days) must not overflow date arithmetic on every page view."""
    return min(max(int(experiment.attribution_days), MIN_ATTRIBUTION_DAYS), MAX_ATTRIBUTION_DAYS)


def _group_sql(experiment: Experiment, by: str | None) -> tuple[str, list, str]:
    """(expression, params, join) for the breakdown group; a constant without one."""
    if not by:
        return "''", [], ""
    segment = segment_by(experiment, by)
    if segment is not None:
        return segment.group_sql()
    if experiment.source == Experiment.Source.IMPORTED:
        sql, params = json_text("e.attributes", by)
        return sql, params, ""
    join = f"JOIN {CUSTOMER} c ON c.id = e.customer_id"
    if by in CUSTOMER_COLUMNS:
        return f"c.{by}", [], join
    sql, params = json_text("c.attributes", by)
    return sql, params, join


def group_label(value) -> str:
    if value is None:
        return "(none)"
    return str(value)


# --------------------------------------------------------------------------- sums


def arm_sums(
    experiment: Experiment, metrics: list[Metric], *, by: str | None = None,
    exposed: unitarrays.ExposedRead | None = None,
) -> dict[tuple[str, int], Sums]:
    """{(group, arm id): Sums} for every arm with units; group is "" without ``by``.
    ``exposed``: a read of the exposures to share (the report's survival data read them too)."""
    group, group_params, join = _group_sql(experiment, by)
    out: dict[tuple[str, int], Sums] = defaultdict(Sums)
    imported = [m for m in metrics if m.source == Metric.Source.IMPORTED]
    customer = [m for m in metrics if m.source != Metric.Source.IMPORTED]
    customers = experiment.source == Experiment.Source.CUSTOMERS
    window = (0, window_days(experiment))
    span = (exposed.span if exposed is not None else exposure_span(experiment)) if customers else (None, None)
    shares = bool(customer) and all(kind_get(m.kind).share and not m.denominator_source for m in customer)
    # Every metric's per-unit totals, each total once (orders count for conversion, count
    # and the ratios over orders alike), and the totals each metric reads.
    parts, indexes = [], []
    for metric in customer:
        own = []
        for part in metric_parts(metric):
            if part not in parts:
                parts.append(part)
            own.append(parts.index(part))
        indexes.append(own)
    arrays = None
    if customers and customer and not shares and not by and not imported:
        arrays = unitarrays.unit_arrays(experiment, parts, window, span, exposed)
    if arrays is not None:
        # The units per arm from the exposures just read: no count over them in SQL.
        for arm_id, n in arrays.units.items():
            out[("", arm_id)].n = n
    else:
        _add_counts(out, experiment, imported, group, group_params, join)

    if customers:
        grouping = (group, group_params, join)
        if shares:
            for metric in customer:
                sql, sql_params = _converters(experiment, metric, window, span, grouping)
                width = len(kind_get(metric.kind).aggregates)
                # A share's unit values are 0 or 1: over the converters, count and sum are both
                # the count of ones; the units without one are zeros, added below.
                for grp, arm_id, converted in fetch(sql, sql_params):
                    out[(group_label(grp), arm_id)].add(metric.name, (converted,) * width)
        elif arrays is not None:
            _add_array_sums(out, customer, indexes, arrays)
        elif customer:
            _add_sql_sums(out, experiment, customer, parts, indexes, window, span, grouping)
        for sums in out.values():
            for metric in customer:
                kind = kind_get(metric.kind)
                found = sums.metrics.get(metric.name) or (0,) + (None,) * (len(kind.aggregates) - 1)
                # A customer unit with no order or event has the value 0, never a missing one.
                sums.metrics[metric.name] = (sums.n,) if kind.units_only else kind.with_zeros(found, sums.n)
    return dict(out)


def _add_counts(out: dict, experiment: Experiment, imported: list[Metric], group: str, group_params: list,
                join: str) -> None:
    """Units per (group, arm), with the imported metrics' aggregates over their outcomes."""
    columns, params, widths = [], list(group_params), []
    for metric in imported:
        parts = [json_number("e.outcomes", key) for key in kind_get(metric.kind).columns(metric.name)]
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


def _add_sql_sums(out: dict, experiment: Experiment, customer: list[Metric], parts: list, indexes: list[list[int]],
                  window: tuple[int, int], span, grouping: Grouping) -> None:
    """Per group and arm, each metric's aggregates over the units with any order or event:
    unit_totals summed per unit in SQL, then aggregated per group and arm."""
    inner, inner_params = unit_totals(experiment, parts, window, span, grouping)
    outer = []
    for metric, own in zip(customer, indexes):
        cols = [f"u.c{i}" for i in own]
        if metric.denominator_source:
            outer.append(_aggregates(metric, [(c, []) for c in cols])[0])
        else:
            outer.append(_aggregates(metric, [(_unit_level(metric, cols[0]), [])])[0])
    rows = fetch(f"SELECT u.grp, u.arm_id, {', '.join(sum(outer, []))} FROM ({inner}) u GROUP BY 1, 2", inner_params)
    for grp, arm_id, *values in rows:
        _add_values(out[(group_label(grp), arm_id)], customer, [len(o) for o in outer], values)


def _add_array_sums(out: dict, customer: list[Metric], indexes: list[list[int]],
                    arrays: unitarrays.UnitArrays) -> None:
    """Per arm, each metric's aggregates over the units with any order or event, as
    _add_sql_sums gives them."""
    order = np.argsort(arrays.arm_ids, kind="stable")
    arm_ids = arrays.arm_ids[order]
    totals = [t[order] for t in arrays.totals]
    found, starts = np.unique(arm_ids, return_index=True)
    for arm_id, start, end in zip(found.tolist(), starts.tolist(), starts[1:].tolist() + [arm_ids.size]):
        sums = out[("", arm_id)]
        for metric, own in zip(customer, indexes):
            kind = kind_get(metric.kind)
            values = [totals[i][start:end] for i in own]
            if not metric.denominator_source:
                values = [kind.unit_value(values[0])]
            sums.add(metric.name, kind.aggregates_of(values))


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
        condition, window_params = in_window("o.ordered_at", window, span)
        value, value_params = order_value(metric)
        matched = f"SELECT 1 FROM {ORDER} o WHERE o.customer_id = e.customer_id AND {condition}"
        params = window_params
        if value_params:  # an order filter: only orders with those properties count
            matched += f" AND ({value}) > 0"
            params = window_params + value_params
    else:
        condition, window_params = in_window("ev.occurred_at", window, span)
        matched = (f"SELECT 1 FROM {EVENT} ev WHERE ev.customer_id = e.customer_id AND ev.kind = %s "
                   f"AND {condition}")
        params = [metric.event_kind] + window_params
    sql = (f"SELECT {group} AS grp, e.arm_id, COUNT(*) FROM {EXPOSURE} e {join} "
           f"WHERE e.experiment_id = %s AND EXISTS ({matched}) GROUP BY 1, 2")
    return sql, group_params + [experiment.id] + params


def _unit_level(metric: Metric, column: str) -> str:
    """A unit's value from its per-unit total, as its kind says (conversions are 0/1)."""
    return sql_fill(kind_get(metric.kind).unit_value_sql, [(column, [])])[0]


def open_windows(experiment: Experiment, now: datetime, span, units: int | None = None) -> int:
    """Customer exposures whose attribution window has not closed: outcomes still coming.
    The span (exposure_span) answers when every window or none is open (a launch exposes
    everyone at one instant); `units`, the count of exposures if the caller has it, then
    saves the count."""
    if experiment.source != Experiment.Source.CUSTOMERS:
        return 0
    opened_after = now - timedelta(days=window_days(experiment))
    first, last = span
    if last is None or last <= opened_after:
        return 0
    if units is not None and first > opened_after:
        return units
    return Exposure.objects.filter(experiment=experiment, exposed_at__gt=opened_after).count()


def windows_close_at(experiment: Experiment, span) -> datetime | None:
    """When the last exposure's attribution window closes (``span`` as exposure_span gives
    it): the report is final from then."""
    latest = span[1]
    return latest + timedelta(days=window_days(experiment)) if latest else None


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
    metric (two for a ratio metric, its numerator and denominator: see value_column) and,
    with ``attributes``, the unit's attributes as a dict column.

    ``window`` (days relative to exposure) defaults to the attribution window; CUPED asks
    for the pre-period (-attribution_days, 0) of the same metrics.
    """
    window = window or (0, window_days(experiment))
    arm_sql, arm_params = arm_filter(arm_ids)
    imported = [m for m in metrics if m.source == Metric.Source.IMPORTED]
    select = ["e.id", "e.arm_id", "e.unit", "e.customer_id"] + (["e.attributes"] if attributes else [])
    params: list = []
    imported_columns: list[str] = []
    for metric in imported:
        keys = kind_get(metric.kind).columns(metric.name)
        keys = keys if kind_get(metric.kind) is RATIO else keys[:1]
        for k, key in enumerate(keys):
            value, value_params = json_number("e.outcomes", key)
            select.append(value)
            params += value_params
            imported_columns.append(value_column(metric, k))
    sql = f"SELECT {', '.join(select)} FROM {EXPOSURE} e WHERE e.experiment_id = %s{arm_sql} ORDER BY e.id"
    columns = ["exposure_id", "arm_id", "unit", "customer_id"] + (["attributes"] if attributes else [])
    frame = pd.DataFrame.from_records(
        fetch(sql, params + [experiment.id] + arm_params), columns=columns + imported_columns
    ).set_index("exposure_id")
    if attributes:
        frame["attributes"] = frame["attributes"].map(_as_dict)

    customer = [m for m in metrics if m.source != Metric.Source.IMPORTED]
    if experiment.source == Experiment.Source.CUSTOMERS and customer:
        parts, levels, names = [], [], []
        for metric in customer:
            for k, part in enumerate(metric_parts(metric)):
                if part not in parts:
                    parts.append(part)
                column = f"u.c{parts.index(part)}"
                levels.append(column if metric.denominator_source else _unit_level(metric, column))
                names.append(value_column(metric, k))
        inner, inner_params = unit_totals(experiment, parts, window, exposure_span(experiment), NO_GROUPING, arm_ids)
        found = fetch(f"SELECT u.exposure_id, {', '.join(levels)} FROM ({inner}) u", inner_params)
        per_unit = pd.DataFrame.from_records(found, columns=["exposure_id", *names]).set_index("exposure_id")
        frame = frame.join(per_unit.astype(float), how="left")
        frame[names] = frame[names].fillna(0.0)
    for metric in metrics:
        for k in range(2 if kind_get(metric.kind) is RATIO else 1):
            name = value_column(metric, k)
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return frame


def value_column(metric: Metric, part: int = 0) -> str:
    """unit_values' column of a metric: its name, or for a ratio metric its numerator's (0)
    or denominator's (1) per-unit total."""
    if kind_get(metric.kind) is RATIO:
        return f"{metric.name} {('numerator', 'denominator')[part]}"
    return metric.name


def unit_covariate(experiment: Experiment, column: str) -> pd.Series:
    """A numeric unit attribute per exposure id (NaN where missing): CUPED's covariate."""
    value, params = json_number("e.attributes", column)
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
