"""experiments/services.py: what campaign launch and the commands call."""

import numpy as np
import pytest

from customers.models import Customer
from customers.services import demo_load
from experiments import assignment, services
from experiments.importers import experiment_import
from experiments.models import Experiment, Exposure, Report
from tests.factories import CustomerFactory

from .factories import EXPOSED_AT, campaign_experiment, expose

pytestmark = pytest.mark.django_db


def test_create_stores_arms_in_order_and_the_first_metric_as_primary():
    experiment = campaign_experiment(arms=[("holdout", 1, True), ("a", 2, False), ("b", 2, False)])
    assert list(experiment.arms.values_list("name", "weight", "is_control")) == [
        ("holdout", 1.0, True), ("a", 2.0, False), ("b", 2.0, False)]
    assert list(experiment.metrics.values_list("name", "is_primary")) == [
        ("conversion", True), ("revenue", False), ("visit", False)]


@pytest.mark.parametrize("arms, message", [
    ([("a", 1, False), ("b", 1, False)], "exactly one arm must be the control"),
    ([("a", 1, True)], "at least two arms"),
    ([("a", 1, True), ("b", 0, False)], "weights must be positive"),
])
def test_create_refuses_a_bad_arm_design(arms, message):
    with pytest.raises(services.ExperimentError, match=message):
        services.experiment_create("x", arms)
    assert not Experiment.objects.exists()


def test_create_refuses_a_name_that_exists():
    campaign_experiment(name="dup")
    with pytest.raises(services.ExperimentError, match="already exists"):
        campaign_experiment(name="dup")


def test_recording_the_same_exposures_twice_adds_nothing():
    experiment = campaign_experiment()
    customers = CustomerFactory.create_batch(3)
    rows = [(c.id, "offer", EXPOSED_AT) for c in customers]

    first = services.exposures_record(experiment, rows)
    second = services.exposures_record(experiment, rows)

    assert (first, second) == (3, 0)
    assert Exposure.objects.filter(experiment=experiment).count() == 3


def test_an_unknown_arm_is_refused_and_nothing_is_written():
    experiment = campaign_experiment()
    customer = CustomerFactory()
    with pytest.raises(services.ExperimentError, match="unknown arm"):
        services.exposures_record(experiment, [(customer.id, "nope", EXPOSED_AT)])
    assert not Exposure.objects.exists()


def test_exposures_from_sql_are_inserted_set_based_and_once():
    experiment = campaign_experiment()
    CustomerFactory.create_batch(4)
    table = Customer._meta.db_table
    sql = (f"SELECT id AS customer_id, CASE WHEN id %% 2 = 0 THEN 'offer' ELSE 'holdout' END AS arm, "
           f"%s AS exposed_at FROM {table}")
    from django.db import connection
    at = EXPOSED_AT if connection.vendor == "postgresql" else connection.ops.adapt_datetimefield_value(EXPOSED_AT)

    assert services.exposures_insert_from_sql(experiment, sql, [at]) == 4
    assert services.exposures_insert_from_sql(experiment, sql, [at]) == 0
    exposure = Exposure.objects.filter(experiment=experiment).first()
    assert exposure.unit == str(exposure.customer_id) and exposure.exposed_at == EXPOSED_AT


def test_assign_puts_each_customer_in_the_arm_arm_for_gives():
    experiment = campaign_experiment(arms=[("holdout", 1, True), ("offer", 3, False)])
    customers = CustomerFactory.create_batch(20)

    services.exposures_assign(experiment, [c.id for c in customers], EXPOSED_AT)

    stored = dict(Exposure.objects.filter(experiment=experiment).values_list("customer_id", "arm__name"))
    expected = {c.id: assignment.arm_for(experiment.salt, c.id, [("holdout", 1), ("offer", 3)]) for c in customers}
    assert stored == expected


def test_an_imported_experiment_takes_no_customer_exposures(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arm,y\na,1\nb,0\n")
    experiment_import(path, name="imp", arm_column="arm", control="a", metrics=["y:binary"])
    with pytest.raises(services.ExperimentError, match="imported"):
        services.exposures_record(Experiment.objects.get(name="imp"), [])


def test_a_fresh_stored_report_is_reused_and_new_exposures_make_it_recompute():
    experiment = campaign_experiment()
    expose(experiment, "offer")
    expose(experiment, "holdout")
    first = services.report_refresh(experiment)
    again = services.report_refresh(experiment)
    expose(experiment, "offer")
    after = services.report_refresh(experiment)

    assert again.computed_at == first.computed_at
    assert after.body["units"] == 3 and after.computed_at > first.computed_at
    assert Report.objects.filter(experiment=experiment).count() == 1


def test_the_demo_campaign_reports_the_planted_three_point_effect():
    demo_load(8000, seed=7)
    experiment = services.experiment_from_demo()

    body = services.report_refresh(experiment).body

    primary = body["metrics"][0]
    assert primary["name"] == "campaign_conversion" and primary["primary"]
    lo, hi = primary["comparisons"][0]["diff_ci"]
    assert lo < 0.03 < hi
    means = {r["arm"]: r["mean"] for r in primary["arms"]}
    assert means["control"] == pytest.approx(0.06, abs=0.012)
    assert means["treatment"] == pytest.approx(0.09, abs=0.012)
    assert body["srm"]["status"] == "ok"
    assert "retention" in body


def test_the_demo_experiment_is_refused_twice_unless_replaced():
    demo_load(500, seed=1)
    services.experiment_from_demo()
    with pytest.raises(services.ExperimentError, match="replace"):
        services.experiment_from_demo()
    assert services.experiment_from_demo(replace=True).exposures.exists()


def test_uplift_top_customers_ranks_customers_with_the_responsive_attribute_first(tmp_path):
    # Planted: the treatment works only for units with responsive = true.
    rng = np.random.default_rng(5)
    n = 6000
    responsive = rng.random(n) < 0.5
    treated = rng.random(n) < 0.5
    y = rng.random(n) < 0.05 + 0.25 * (treated & responsive)
    lines = ["arm,converted,responsive,age"] + [
        f"{'t' if t else 'c'},{int(c)},{'true' if r else 'false'},{int(a)}"
        for t, c, r, a in zip(treated, y, responsive, rng.integers(20, 70, n))]
    path = tmp_path / "planted.csv"
    path.write_text("\n".join(lines) + "\n")
    experiment_import(path, name="planted", arm_column="arm", control="c", metrics=["converted:binary"])
    model = services.uplift_model_train(Experiment.objects.get(name="planted"), "t", "converted",
                                        learner="logistic")
    keen = CustomerFactory.create_batch(5, attributes={"responsive": True, "age": 40})
    cool = CustomerFactory.create_batch(5, attributes={"responsive": False, "age": 40})

    top = services.uplift_top_customers(model.id, 0.5, customer_ids=[c.id for c in cool + keen])

    assert model.info["qini_coefficient"] > 0
    assert set(top) == {c.id for c in keen}


def test_uplift_on_a_customer_experiment_learns_from_behaviour_before_exposure():
    demo_load(1500, seed=4)
    experiment = services.experiment_from_demo()
    model = services.uplift_model_train(experiment, "treatment", "campaign_conversion", learner="logistic", folds=3)

    top = services.uplift_top_customers(model.id, 0.1)

    assert model.feature_source == "customer_features" and "recency_days" in model.features
    assert model.info["features_as_of"] == services.demo_campaign_date().isoformat()
    assert len(top) == int(np.ceil(0.1 * Customer.objects.count()))
    assert len(set(top)) == len(top)
