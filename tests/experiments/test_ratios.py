"""experiments/ratios.py: ratio metrics of customer experiments in SQL (numerator and
denominator from orders or events in the window), against the delta method by hand."""

import numpy as np
import pytest
from scipy import stats as sps

from experiments import reports
from experiments.stats.ratio import RatioUnits, analyze_ratios_cuped

from .factories import campaign_experiment, event, expose, order
from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db


def delta_var(x, y):
    c = np.cov(x, y, ddof=1)
    mx, my = x.mean(), y.mean()
    return (c[0, 0] / my**2 - 2 * mx * c[0, 1] / my**3 + mx**2 * c[1, 1] / my**4) / len(x)


def test_revenue_per_order_and_orders_per_visit_match_the_delta_method():
    experiment = campaign_experiment(primary_metric="revenue/orders",
                                     secondary_metrics=["orders/visit", "revenue/visit", "revenue"],
                                     attribution_days=7)
    rng = np.random.default_rng(14)
    data = {"holdout": [], "offer": []}
    for i in range(60):
        arm = "offer" if i % 2 else "holdout"
        customer = expose(experiment, arm)
        revenue = orders = visits = 0
        for _ in range(rng.poisson(1.2)):
            amount = int(rng.integers(10, 100))
            order(customer, days_after=1, amount=amount)
            revenue, orders = revenue + amount, orders + 1
        order(customer, days_after=9, amount=500)  # outside the window: never counted
        for k in range(rng.poisson(2)):
            event(customer, days_after=2 + k / 10)
            visits += 1
        data[arm].append((revenue, orders, visits))
    body = reports.report_build(experiment)
    assert_report_schema(body)
    metrics = {m["name"]: m for m in body["metrics"]}
    h, o = (np.array(data[a], dtype=float) for a in ("holdout", "offer"))
    for name, (num, den) in {"revenue/orders": (0, 1), "orders/visit": (1, 2), "revenue/visit": (0, 2)}.items():
        metric = metrics[name]
        assert metric["kind"] == "ratio"
        rows = {r["arm"]: r for r in metric["arms"]}
        assert rows["offer"]["mean"] == pytest.approx(o[:, num].sum() / o[:, den].sum())
        assert rows["holdout"]["mean"] == pytest.approx(h[:, num].sum() / h[:, den].sum())
        diff = o[:, num].sum() / o[:, den].sum() - h[:, num].sum() / h[:, den].sum()
        se = np.sqrt(delta_var(o[:, num], o[:, den]) + delta_var(h[:, num], h[:, den]))
        comp = metric["comparisons"][0]
        assert comp["diff"] == pytest.approx(diff)
        assert comp["p_value"] == pytest.approx(2 * sps.norm.sf(abs(diff) / se), rel=1e-6)


def test_pre_period_cuped_adjusts_a_ratio_metric_from_its_numerator_and_denominator_before_exposure():
    experiment = campaign_experiment(primary_metric="revenue/orders", secondary_metrics=["revenue"],
                                     covariate="pre_period", attribution_days=7)
    rng = np.random.default_rng(31)
    data = {"holdout": [], "offer": []}
    for i in range(80):
        arm = "offer" if i % 2 else "holdout"
        customer = expose(experiment, arm)
        habit = float(rng.uniform(20, 200))
        before = [round(habit * rng.uniform(0.9, 1.1), 2) for _ in range(int(rng.integers(1, 4)))]
        after = [round(habit * rng.uniform(0.9, 1.2), 2) for _ in range(int(rng.integers(1, 4)))]
        for amount in before:
            order(customer, days_after=-3, amount=amount)
        for amount in after:
            order(customer, days_after=2, amount=amount)
        data[arm].append((sum(after), len(after), sum(before), len(before)))

    body = reports.report_build(experiment)

    assert_report_schema(body)
    metric = body["metrics"][0]
    arrays = {a: np.array(rows, dtype=float) for a, rows in data.items()}
    expected = analyze_ratios_cuped("revenue/orders", {a: RatioUnits.from_arrays(*v.T) for a, v in arrays.items()},
                                    "holdout")
    assert metric["name"] == "revenue/orders" and metric["kind"] == "ratio"
    assert metric["cuped"]["theta"] == pytest.approx(expected["cuped"]["theta"])
    assert metric["cuped"]["variance_reduction"] > 0.5
    assert "before exposure" in metric["cuped"]["covariate"]
    assert metric["comparisons"][0]["p_value"] == pytest.approx(expected["comparisons"][0]["p_value"])
    assert metric["comparisons"][0]["diff"] == pytest.approx(expected["comparisons"][0]["diff"])
