"""The per-unit totals a customer experiment's metric is measured from: one part for a
plain metric (orders, revenue, events of a kind in the window), two for a ratio metric,
its numerator's and its denominator's (revenue and orders, orders and visits). Every part of
every metric of a report is summed per unit in one pass (unitsql.unit_totals)."""

from __future__ import annotations

from .models import Metric
from .unitsql import ORDER_SOURCES, Part


def metric_parts(metric: Metric) -> list[Part]:
    def part(source: str, event_kind: str) -> Part:
        if source in ORDER_SOURCES:
            # Conversion and count both count orders: the same per-unit total.
            counted = Metric.Source.ORDER_COUNT if source == Metric.Source.ORDER_CONVERSION else source
            return Part(counted, "", tuple(sorted(metric.order_filter.items())))
        return Part(Metric.Source.EVENT_COUNT, event_kind)

    if metric.denominator_source:
        return [part(metric.source, metric.event_kind), part(metric.denominator_source, metric.denominator_event_kind)]
    return [part(metric.source, metric.event_kind)]
