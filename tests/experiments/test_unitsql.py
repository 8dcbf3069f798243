"""experiments/unitsql.py: per-unit order and event totals, and the attribution-window conditions."""

from datetime import timedelta

import pytest

from experiments import outcomes
from experiments.models import Metric
from experiments.ratios import metric_parts
from experiments.unitsql import Part, fetch, one_instant, unit_totals

from .factories import EXPOSED_AT, campaign_experiment, event, expose, order

pytestmark = pytest.mark.django_db
TICK = timedelta(milliseconds=1)  # SQLite's per-row window (julianday) resolves milliseconds
DAY_TICK = TICK / timedelta(days=1)


def units_at_one_instant():
    """Units exposed at EXPOSED_AT with orders and visits on both sides of each edge of a
    7-day window and of the 7 days before it: at the instant, a tick before, at the close."""
    experiment = campaign_experiment(attribution_days=7, secondary_metrics=["revenue", "visit", "orders/visit"])
    for arm in ("offer", "holdout"):
        for days in (-7, -7 - DAY_TICK, -1, 0, -DAY_TICK, 3, 7 - DAY_TICK, 7, 8):
            customer = expose(experiment, arm)
            order(customer, days_after=days, amount=10 + days)
            order(customer, days_after=days + 2, amount=5)
            event(customer, days_after=days)
        expose(experiment, arm)  # nothing at all
    return experiment


def totals(experiment, window, span) -> list[tuple]:
    parts: list[Part] = []
    for metric in experiment.metrics.all():
        parts += [p for p in metric_parts(metric) if p not in parts]
    sql, params = unit_totals(experiment, parts, window, span)
    return sorted(tuple(round(float(v), 9) if isinstance(v, float) else v for v in row) for row in fetch(sql, params))


@pytest.mark.parametrize("window", [(0, 7), (-7, 0)])  # the attribution window, CUPED's pre-period
def test_one_instant_totals_equal_each_units_own_window(window):
    experiment = units_at_one_instant()
    span = outcomes.exposure_span(experiment)
    assert one_instant(span) == EXPOSED_AT

    joined = totals(experiment, window, span)
    # A span a tick wider is not one instant: every unit's own window is checked per row.
    windowed = totals(experiment, window, (span[0], span[1] + TICK))

    assert joined == windowed
    assert len(joined) > 6  # units on both sides of the edges had something in the window


def test_an_exposure_at_another_instant_is_not_one_instant():
    experiment = units_at_one_instant()
    expose(experiment, "offer", at=EXPOSED_AT + TICK)

    assert one_instant(outcomes.exposure_span(experiment)) is None


def test_one_instant_conversions_match_the_counted_window():
    # Share-only metrics take the semi-join (outcomes._converters), not unit_totals.
    experiment = campaign_experiment(attribution_days=7, secondary_metrics=["visit"])
    for days in (-DAY_TICK, 0, 7 - DAY_TICK, 7):
        order(expose(experiment, "offer"), days_after=days)
    event(expose(experiment, "offer"), days_after=0)
    metrics = list(experiment.metrics.all())
    assert all(m.source in (Metric.Source.ORDER_CONVERSION, Metric.Source.EVENT_CONVERSION) for m in metrics)

    sums = outcomes.arm_sums(experiment, metrics)

    (offer,) = [s for (_, arm_id), s in sums.items() if s.n]
    assert offer.metrics["conversion"][1] == 2 and offer.metrics["visit"][1] == 1
