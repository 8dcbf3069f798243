"""experiments/unitarrays.py: a customer experiment's arm sums from per-unit arrays, the same
as the SQL's (unitsql.unit_totals), for every metric kind, at one instant and over days."""

from datetime import timedelta

import numpy as np
import pytest

from experiments import outcomes, survival, unitarrays
from experiments.kinds import CONTINUOUS, MEDIAN
from experiments.models import Metric
from experiments.services.definitions import MetricDefinition

from .factories import EXPOSED_AT, campaign_experiment, event, expose, order

pytestmark = pytest.mark.django_db
TICK = 0.001 / 86400  # a millisecond, in days: SQLite's per-row window resolves milliseconds
METRICS = [
    "revenue", "orders", "visit", "revenue/orders", "orders/visit",
    MetricDefinition("spring revenue", CONTINUOUS.name, Metric.Source.ORDER_REVENUE,
                     order_filter={"campaign": "spring"}),
    MetricDefinition("app opens", CONTINUOUS.name, Metric.Source.EVENT_COUNT, event_kind="app_open"),
    MetricDefinition("median revenue", MEDIAN.name, Metric.Source.ORDER_REVENUE),
]


def experiment_with_units(*, spread: bool):
    """40 units in two arms with orders and events on both sides of their 7-day window's
    edges; exposed at one instant (a launch) or each at its own time over 20 days."""
    experiment = campaign_experiment(attribution_days=7, secondary_metrics=METRICS)
    rng = np.random.default_rng(7)
    for i in range(40):
        at = EXPOSED_AT + timedelta(days=i / 2) if spread else EXPOSED_AT
        customer = expose(experiment, ("offer", "holdout")[i % 2], at=at)
        for k in range(int(rng.integers(0, 4))):
            order(customer, at=at, days_after=float(rng.choice([-1, -TICK, 0, 0.5, 3, 7 - TICK, 7, 9])) + k * 1e-6,
                  amount=f"{rng.uniform(5, 80):.2f}", properties={"campaign": str(rng.choice(["spring", "summer"]))})
        for k in range(int(rng.integers(0, 5))):
            event(customer, at=at, days_after=float(rng.choice([-TICK, 0, 2, 7 - TICK, 7])) + k * 1e-6,
                  kind=str(rng.choice(["visit", "app_open"])))
    return experiment


def sums_both_ways(experiment, monkeypatch):
    metrics = list(experiment.metrics.all())
    read = []
    monkeypatch.setattr(unitarrays, "unit_arrays", lambda *args, real=unitarrays.unit_arrays: read.append(real(*args))
                        or read[-1])
    arrays = outcomes.arm_sums(experiment, metrics)
    assert read[-1] is not None  # the arrays were used
    monkeypatch.setattr(unitarrays, "MAX_ROWS", 0)  # every read is past it: the SQL
    sql = outcomes.arm_sums(experiment, metrics)
    assert len(read) == 2 and read[-1] is None  # and here they were not
    return arrays, sql


def assert_same_sums(arrays, sql):
    assert arrays.keys() == sql.keys()
    for key, expected in sql.items():
        assert arrays[key].n == expected.n
        assert arrays[key].metrics.keys() == expected.metrics.keys()
        for name, values in expected.metrics.items():
            assert arrays[key].metrics[name] == pytest.approx(values, rel=1e-12, abs=1e-12, nan_ok=True), (key, name)


@pytest.mark.parametrize("spread", [False, True], ids=["one instant", "over days"])
def test_array_sums_equal_the_sql_sums_for_every_kind(spread, monkeypatch):
    experiment = experiment_with_units(spread=spread)

    arrays, sql = sums_both_ways(experiment, monkeypatch)

    assert_same_sums(arrays, sql)
    converted = sum(s.metrics["conversion"][1] for s in sql.values())
    assert 0 < converted < 40  # the data reach both sides of the window


@pytest.mark.django_db(transaction=True)
def test_array_sums_read_the_exposures_on_a_second_connection(monkeypatch):
    # Outside a transaction the exposures are read alongside the orders (core.db.alongside).
    experiment = experiment_with_units(spread=False)

    arrays, sql = sums_both_ways(experiment, monkeypatch)

    assert_same_sums(arrays, sql)


def test_no_orders_or_events_in_the_window_gives_zero_sums(monkeypatch):
    experiment = campaign_experiment(attribution_days=7, secondary_metrics=METRICS)
    for arm in ("offer", "holdout", "offer"):
        order(expose(experiment, arm), days_after=-3)

    arrays, sql = sums_both_ways(experiment, monkeypatch)

    assert_same_sums(arrays, sql)
    assert {s.n: s.metrics["revenue"][:2] for s in arrays.values()} == {2: (2, 0.0), 1: (1, 0.0)}


def survival_both_ways(experiment, monkeypatch, now):
    calls = []
    monkeypatch.setattr(unitarrays, "first_returns", lambda *args, real=unitarrays.first_returns: calls.append(args)
                        or real(*args))
    arrays = survival.survival_data(experiment, now, max_day=30)
    monkeypatch.setattr(unitarrays, "MAX_ROWS", 0)  # every read is past it: the SQL
    sql = survival.survival_data(experiment, now, max_day=30)
    assert len(calls) == 2

    def rows(data):
        return sorted(zip(data.arm_ids.tolist(), data.durations.tolist(), data.events.tolist(),
                          data.observed_hours.tolist(), data.counts.tolist()))
    return rows(arrays), rows(sql)


@pytest.mark.parametrize("spread", [False, True], ids=["one instant", "over days"])
@pytest.mark.parametrize("event_kind", ["order", "visit"])
def test_first_returns_from_arrays_equal_the_sql(spread, event_kind, monkeypatch):
    experiment = experiment_with_units(spread=spread)
    experiment.retention_event = event_kind
    # Now inside the last units' windows: some are observed for less than their first return.
    now = EXPOSED_AT + timedelta(days=19.5 if spread else 5)

    arrays, sql = survival_both_ways(experiment, monkeypatch, now)

    assert arrays == sql
    assert 0 < sum(count for *_, event, _, count in arrays if event) < sum(count for *_, count in arrays)
