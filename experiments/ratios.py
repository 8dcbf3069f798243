"""Ratio metrics of customer experiments, in SQL: a numerator and a denominator per unit
(revenue and orders, orders and visits), each from orders or events in the attribution
window, then the ratio kind's aggregates over units (experiments.kinds.RATIO).

A numerator from orders over a denominator from events needs both per-unit totals side by
side: the two per-unit queries are stacked (UNION ALL) and summed per unit, so each table is
still read once through its time index. Units with neither are zeros, added by the caller."""

from __future__ import annotations

from dataclasses import dataclass, field

from .kinds import RATIO, sql_fill
from .models import Experiment, Metric
from .unitsql import EVENT_SOURCES, ORDER_SOURCES, Grouping, fetch, per_unit_events, per_unit_orders


@dataclass(frozen=True)
class Component:
    """One side of a ratio, shaped like a Metric for the per-unit query builders."""

    source: str
    event_kind: str = ""
    order_filter: dict = field(default_factory=dict)


def _components(metric: Metric) -> tuple[Component, Component]:
    def side(source: str, event_kind: str) -> Component:
        return Component(source, event_kind, dict(metric.order_filter) if source in ORDER_SOURCES else {})

    return side(metric.source, metric.event_kind), side(metric.denominator_source, metric.denominator_event_kind)


def ratio_sums(experiment: Experiment, metrics: list[Metric], window: tuple[int, int], span,
               grouping: Grouping) -> dict[tuple, list]:
    """{(raw group, arm id): the ratio kind's aggregates for each metric, in order} over the
    units with an order or event in either part."""
    parts = [c for m in metrics for c in _components(m)]
    families = [(ORDER_SOURCES, per_unit_orders), (EVENT_SOURCES, per_unit_events)]
    columns: dict[int, str] = {}  # part index -> column of the stacked per-unit query
    branches, params = [], []
    for sources, builder in families:
        chosen = [i for i, p in enumerate(parts) if p.source in sources]
        if not chosen:
            continue
        sql, sql_params = builder(experiment, [parts[i] for i in chosen], window, span, grouping)
        names = {i: f"m{k}" for k, i in enumerate(chosen)}
        select = ", ".join(f"u.{names[i]} AS c{i}" if i in names else f"NULL AS c{i}" for i in range(len(parts)))
        branches.append(f"SELECT u.exposure_id, u.arm_id, u.grp, {select} FROM ({sql}) u")
        params += sql_params
        columns.update({i: f"c{i}" for i in chosen})
    if len(branches) == 1:
        inner = branches[0]
    else:  # numerators and denominators from both tables: one row per unit, missing sides 0
        sums = ", ".join(f"COALESCE(SUM(s.c{i}), 0) AS c{i}" for i in range(len(parts)))
        inner = (f"SELECT s.exposure_id, s.arm_id, s.grp, {sums} FROM ({' UNION ALL '.join(branches)}) s "
                 "GROUP BY 1, 2, 3")
    aggregates, aggregate_params = [], []
    for k in range(len(metrics)):
        values = [(f"COALESCE(w.{columns[2 * k]}, 0)", []), (f"COALESCE(w.{columns[2 * k + 1]}, 0)", [])]
        for template in RATIO.aggregates:
            sql, sql_params = sql_fill(template, values)
            aggregates.append(sql)
            aggregate_params += sql_params
    rows = fetch(f"SELECT w.grp, w.arm_id, {', '.join(aggregates)} FROM ({inner}) w GROUP BY 1, 2",
                 aggregate_params + params)
    return {(grp, arm_id): list(values) for grp, arm_id, *values in rows}
