"""experiments/reports.py: the whole report built from the database."""

from datetime import timedelta

import numpy as np
import pytest

from experiments import reports
from experiments.importers import experiment_import
from experiments.models import Experiment
from experiments.stats.ratio import RatioUnits, analyze_ratios_cuped

from .factories import EXPOSED_AT, campaign_experiment, expose, order
from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db
LATER = EXPOSED_AT + timedelta(days=60)


def by_arm(metric):
    return {row["arm"]: row for row in metric["arms"]}


def test_campaign_report_computes_conversion_and_revenue_per_arm():
    experiment = campaign_experiment(attribution_days=7)
    for amount in (20, 40):
        order(expose(experiment, "offer"), days_after=2, amount=amount)
    expose(experiment, "offer")
    order(expose(experiment, "holdout"), days_after=9, amount=100)  # outside the window
    expose(experiment, "holdout")

    body = reports.report_build(experiment, now=LATER)

    assert_report_schema(body)
    conversion, revenue = body["metrics"][0], body["metrics"][1]
    assert by_arm(conversion)["offer"]["mean"] == pytest.approx(2 / 3)
    assert by_arm(conversion)["holdout"]["mean"] == 0
    assert by_arm(revenue)["offer"]["mean"] == pytest.approx(20.0)
    assert [a["n"] for a in body["arms"]] == [2, 3]


def retention_of_four_units() -> dict:
    """Two offer units (one orders on day 3) and two holdout units (one orders on day 10, one
    observed for two days only): the report's retention section, with day 7's counts checked."""
    experiment = campaign_experiment(retention_days=[7])
    order(expose(experiment, "offer"), days_after=3)
    expose(experiment, "offer")
    order(expose(experiment, "holdout"), days_after=10)
    expose(experiment, "holdout", at=LATER - timedelta(days=2))  # observed two days only

    retention = reports.report_build(experiment, now=LATER)["retention"]

    day7 = {r["arm"]: r for r in retention["day_n"][0]["arms"]}
    assert (day7["offer"]["n"], day7["offer"]["returned"]) == (2, 1)
    assert (day7["holdout"]["n"], day7["holdout"]["returned"], day7["holdout"]["excluded"]) == (1, 0, 1)
    return retention


def test_campaign_report_has_retention_with_recent_units_left_out_of_day_n():
    retention = retention_of_four_units()
    assert {km["arm"] for km in retention["kaplan_meier"]} == {"offer", "holdout"}
    assert retention["hazard_ratios"][0]["arm"] == "offer"


def test_the_report_carries_the_over_time_curve_computed_from_the_units():
    experiment = campaign_experiment(retention_days=[7])
    holdout, offer = [], []
    for i in range(6):
        c = expose(experiment, "holdout")
        holdout.append(c)
        if i < 2:
            order(c, days_after=4)  # 2 of 6 by day 4
    for i in range(5):
        c = expose(experiment, "offer")
        offer.append(c)
        if i < 3:
            order(c, days_after=1 + i)  # by day 1, 2 and 3
    late = expose(experiment, "offer", at=LATER - timedelta(days=2))  # observed two days only
    order(late, days_after=1, at=LATER - timedelta(days=2))

    curve = reports.report_build(experiment, now=LATER)["cumulative"]

    assert curve["control"] == "holdout" and curve["days"] == 30 and curve["event"] == "order"
    (series,) = curve["series"]
    assert series["arm"] == "offer" and series["day"] == list(range(1, 31))
    # By hand: day d counts units observed >= d days; offer converts 1, 2, 3 by days 1..3 (the
    # late unit converts on day 1 and counts on days 1-2 only), holdout 2 of 6 from day 4.
    def share(converted, n):
        return converted / n
    expected = {1: share(2, 6) - 0, 2: share(3, 6) - 0, 3: share(3, 5) - 0, 4: share(3, 5) - share(2, 6),
                30: share(3, 5) - share(2, 6)}
    for day, diff in expected.items():
        assert series["diff"][day - 1] == pytest.approx(diff), day
    lo, hi = series["lo"][29], series["hi"][29]
    assert lo < series["diff"][29] < hi


def test_open_attribution_windows_are_counted_and_stated():
    experiment = campaign_experiment(attribution_days=7)
    expose(experiment, "offer", at=LATER - timedelta(days=1))
    expose(experiment, "holdout")

    body = reports.report_build(experiment, now=LATER)

    assert body["open_windows"] == 1
    assert "still open" in body["verdict"]


@pytest.mark.parametrize("days_before, still_open", [(1, 3), (8, 0)])
def test_windows_of_a_launch_are_all_open_or_all_closed(days_before, still_open):
    experiment = campaign_experiment(attribution_days=7)
    for arm in ("offer", "holdout", "offer"):
        expose(experiment, arm, at=LATER - timedelta(days=days_before))

    body = reports.report_build(experiment, now=LATER)

    assert body["open_windows"] == still_open
    assert ("still open" in body["verdict"]) == bool(still_open)


def test_pre_period_cuped_reduces_the_variance_of_revenue():
    rng = np.random.default_rng(2)
    experiment = campaign_experiment(covariate="pre_period", secondary_metrics=["revenue"], attribution_days=7)
    for i in range(60):
        customer = expose(experiment, "offer" if i % 2 else "holdout")
        habit = float(rng.uniform(10, 200))
        order(customer, days_after=-3, amount=round(habit, 2))
        order(customer, days_after=3, amount=round(habit * 1.1 + rng.normal(0, 5), 2))

    revenue = reports.report_build(experiment, now=LATER)["metrics"][1]

    assert revenue["cuped"]["variance_reduction"] > 0.9
    assert "before exposure" in revenue["cuped"]["covariate"]


def test_an_imported_covariate_is_used_for_cuped_and_there_is_no_retention(tmp_path):
    rng = np.random.default_rng(3)
    rows = ["arm,spend,pre"]
    for i in range(200):
        pre = rng.uniform(0, 100)
        rows.append(f"{'B' if i % 2 else 'A'},{pre + rng.normal(0, 3):.2f},{pre:.2f}")
    path = tmp_path / "cuped.csv"
    path.write_text("\n".join(rows) + "\n")
    experiment_import(path, name="cuped", arm_column="arm", control="A", metrics=["spend:continuous"],
                      covariate="pre")

    body = reports.report_build(Experiment.objects.get(name="cuped"))

    assert body["metrics"][0]["cuped"]["covariate"] == "pre"
    assert body["metrics"][0]["cuped"]["variance_reduction"] > 0.9
    assert "retention" not in body


def test_breakdown_by_an_attribute_is_added_to_the_report():
    experiment = campaign_experiment()
    for tier in ("gold", "silver"):
        for arm in ("offer", "holdout"):
            expose(experiment, arm, attributes={"tier": tier})

    body = reports.report_build(experiment, by="tier", now=LATER)

    assert [s["value"] for s in body["breakdown"]["segments"]] == ["gold", "silver"]
    assert "by chance" in body["breakdown"]["caveat"]


def test_an_imported_ratio_covariate_pair_adjusts_ratio_metrics(tmp_path):
    rng = np.random.default_rng(4)
    rows, data = ["arm,spend,visit,pre_spend,pre_visit"], {"A": [], "B": []}
    for i in range(300):
        arm = "B" if i % 2 else "A"
        pre_visit, visit = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        per_visit = rng.uniform(5, 50)
        pre_spend = round(pre_visit * per_visit, 2)
        spend = round(visit * per_visit * rng.uniform(0.95, 1.05), 2)
        rows.append(f"{arm},{spend},{visit},{pre_spend},{pre_visit}")
        data[arm].append((spend, visit, pre_spend, pre_visit))
    path = tmp_path / "ratio_cuped.csv"
    path.write_text("\n".join(rows) + "\n")
    experiment_import(path, name="ratio-cuped", arm_column="arm", control="A",
                      metrics=["spend/visit:ratio", "spend:continuous"], covariate="pre_spend/pre_visit")

    body = reports.report_build(Experiment.objects.get(name="ratio-cuped"))

    ratio, spend = body["metrics"]
    expected = analyze_ratios_cuped("spend/visit", {a: RatioUnits.from_arrays(*np.array(v).T) for a, v in data.items()},
                                    "A")
    assert ratio["cuped"]["covariate"] == "pre_spend/pre_visit"
    assert ratio["cuped"]["theta"] == pytest.approx(expected["cuped"]["theta"])
    assert ratio["comparisons"][0]["p_value"] == pytest.approx(expected["comparisons"][0]["p_value"])
    assert ratio["cuped"]["variance_reduction"] > 0.5
    assert "cuped" not in spend  # a pair of columns adjusts ratio metrics only


@pytest.mark.django_db(transaction=True)
def test_retention_read_on_a_second_connection_matches_the_units():
    # Outside a transaction the survival data are read alongside the metrics (core.db.alongside).
    retention = retention_of_four_units()
    assert {km["arm"]: km["n"] for km in retention["kaplan_meier"]} == {"offer": 2, "holdout": 2}
