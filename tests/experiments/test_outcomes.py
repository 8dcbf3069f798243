"""experiments/outcomes.py: outcomes of customer exposures computed in SQL from orders and events."""

from datetime import timedelta

import numpy as np
import pytest
from django.db import connection

from core.db import is_postgres
from experiments import outcomes, survival
from customers.models import Customer, Order
from experiments.models import Exposure, Metric
from experiments.kinds import BINARY
from experiments.services.definitions import MetricDefinition
from experiments.services.exposures import exposures_record
from experiments.unitsql import Part, unit_totals

from .factories import EXPOSED_AT, campaign_experiment, event, expose, order

pytestmark = pytest.mark.django_db


def sums_by_arm(experiment, by=None):
    metrics = list(experiment.metrics.all())
    names = dict(experiment.arms.values_list("id", "name"))
    return {(grp, names[arm_id]): s for (grp, arm_id), s in outcomes.arm_sums(experiment, metrics, by=by).items()}


def test_conversion_counts_only_orders_inside_the_attribution_window():
    experiment = campaign_experiment(attribution_days=7)
    inside = expose(experiment, "offer")
    order(inside, days_after=1)
    late = expose(experiment, "offer")
    order(late, days_after=8)  # one day after the window closed
    early = expose(experiment, "offer")
    order(early, days_after=-1)  # before the exposure
    at_close = expose(experiment, "offer")
    order(at_close, days_after=7)  # the window is [exposure, exposure + 7 days)
    expose(experiment, "offer")

    offer = sums_by_arm(experiment)[("", "offer")]

    assert offer.n == 5
    assert offer.metrics["conversion"] == (5, 1.0)  # (units with a value, converters)


def test_revenue_is_the_sum_of_a_units_orders_in_the_window():
    experiment = campaign_experiment(attribution_days=7)
    buyer = expose(experiment, "offer")
    order(buyer, days_after=1, amount=30)
    order(buyer, days_after=2, amount="20.50")
    order(buyer, days_after=9, amount=100)  # outside
    expose(experiment, "offer")
    holdout = expose(experiment, "holdout")
    order(holdout, days_after=3, amount=10)

    sums = sums_by_arm(experiment)

    # (units, mean, sample variance): the unit without an order counts as 0.
    assert sums[("", "offer")].metrics["revenue"] == pytest.approx((2, 25.25, np.var([50.5, 0], ddof=1)))
    assert sums[("", "offer")].metrics["conversion"] == (2, 1.0)
    assert sums[("", "holdout")].metrics["revenue"][:2] == pytest.approx((1, 10.0))
    assert sums[("", "holdout")].n == 1


def test_an_order_filter_counts_only_orders_with_those_properties():
    experiment = campaign_experiment(
        primary_metric=MetricDefinition("campaign_conversion", BINARY.name, Metric.Source.ORDER_CONVERSION,
                                        order_filter={"campaign": "spring"}),
        secondary_metrics=[],
    )
    tagged = expose(experiment, "offer")
    order(tagged, days_after=1, properties={"campaign": "spring"})
    other = expose(experiment, "offer")
    order(other, days_after=1, properties={"campaign": "summer"})
    plain = expose(experiment, "offer")
    order(plain, days_after=1)

    assert sums_by_arm(experiment)[("", "offer")].metrics["campaign_conversion"] == (3, 1.0)


def test_an_event_metric_counts_units_with_that_kind_of_event_in_the_window():
    experiment = campaign_experiment(attribution_days=7)
    visitor = expose(experiment, "offer")
    event(visitor, days_after=1)
    event(visitor, days_after=2)
    opener = expose(experiment, "offer")
    event(opener, days_after=1, kind="app_open")
    late = expose(experiment, "offer")
    event(late, days_after=10)

    assert sums_by_arm(experiment)[("", "offer")].metrics["visit"] == (3, 1.0)


def test_breakdown_groups_units_by_a_customer_attribute_spelled_alike_on_every_database():
    experiment = campaign_experiment()
    gold = expose(experiment, "offer", attributes={"tier": "gold", "vip": True})
    order(gold, days_after=1)
    expose(experiment, "offer", attributes={"tier": "silver", "vip": False})
    expose(experiment, "holdout", attributes={"tier": "gold", "vip": True})
    expose(experiment, "holdout")

    by_tier = sums_by_arm(experiment, by="tier")
    by_vip = sums_by_arm(experiment, by="vip")

    assert by_tier[("gold", "offer")].metrics["conversion"] == (1, 1.0)
    assert {k: s.n for k, s in by_tier.items()} == {
        ("gold", "offer"): 1, ("silver", "offer"): 1, ("gold", "holdout"): 1, ("(none)", "holdout"): 1,
    }
    assert {grp for grp, _ in by_vip} == {"true", "false", "(none)"}


def test_unit_values_are_zero_for_units_without_orders():
    experiment = campaign_experiment()
    buyer = expose(experiment, "offer")
    order(buyer, days_after=1, amount=40)
    expose(experiment, "offer")

    frame = outcomes.unit_values(experiment, list(experiment.metrics.all()))

    assert sorted(frame["revenue"]) == [0.0, 40.0]
    assert sorted(frame["conversion"]) == [0.0, 1.0]


def test_survival_data_censors_units_without_a_return_at_now():
    experiment = campaign_experiment()
    returner = expose(experiment, "offer")
    order(returner, days_after=-5)  # before exposure: not a return
    order(returner, days_after=2.5)
    order(returner, days_after=4)
    expose(experiment, "offer")
    recent = expose(experiment, "holdout", at=EXPOSED_AT + timedelta(days=7))
    order(recent, days_after=20, at=EXPOSED_AT)  # after "now": not seen yet
    now = EXPOSED_AT + timedelta(days=10)

    data = survival.survival_data(experiment, now, max_day=30)

    rows = sorted(zip(data.durations.tolist(), data.events.tolist(), data.observed_days.tolist(),
                      data.counts.tolist()))
    assert rows == [(2.5, 1, 10.0, 1), (3.0, 0, 3.0, 1), (10.0, 0, 10.0, 1)]
    # The over-time curve caps days observed at its own horizon from the same rows.
    assert sorted(data.capped(5).observed_days.tolist()) == [3.0, 5.0, 5.0]


def test_survival_data_groups_units_alike_into_one_row_with_their_count():
    experiment = campaign_experiment()
    for _ in range(3):
        order(expose(experiment, "offer"), days_after=2.5)
    for _ in range(2):
        expose(experiment, "offer")
    now = EXPOSED_AT + timedelta(days=10)

    data = survival.survival_data(experiment, now, max_day=30)

    rows = sorted(zip(data.durations.tolist(), data.events.tolist(), data.counts.tolist()))
    assert rows == [(2.5, 1, 3), (10.0, 0, 2)]
    assert data.units == 5


@pytest.mark.skipif(not is_postgres(), reason="PostgreSQL's plans")
def test_an_orders_loop_finds_each_customers_exposure_in_one_index_probe():
    """Right after a launch or an import, before ANALYZE has seen the new rows, PostgreSQL
    plans the join of a report's orders to its exposures as a loop over the few orders it
    expects. Each turn must find that customer's exposure in this experiment by both keys:
    with an index on customer alone it was ANDed with every exposure of the experiment
    (70 s for 14,500 orders against 196,000 exposures)."""
    experiment = campaign_experiment(attribution_days=7)
    other = campaign_experiment(name="other", attribution_days=7)
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"c{i}", email=f"c{i}@example.com") for i in range(3000))
    exposures_record(experiment, [(c.id, "offer" if i % 2 else "holdout", EXPOSED_AT) for i, c in enumerate(customers)])
    exposures_record(other, [(c.id, "offer", EXPOSED_AT) for c in customers])
    with connection.cursor() as cursor:  # statistics from before the outcome orders came in
        cursor.execute(f"ANALYZE {Exposure._meta.db_table}")
        cursor.execute(f"ANALYZE {Order._meta.db_table}")
    for customer in customers[:30]:
        order(customer, days_after=1)
    parts = [Part(Metric.Source.ORDER_CONVERSION)]
    sql, params = unit_totals(experiment, parts, (0, 7), outcomes.exposure_span(experiment))
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Nested Loop" in plan, plan
    probes = [line for line in plan.splitlines() if "Index Cond" in line and "customer_id = o.customer_id" in line]
    assert probes and all("experiment_id = " in line for line in probes), plan
    assert "BitmapAnd" not in plan, plan
