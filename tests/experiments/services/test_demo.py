"""experiments/services/demo.py: the campaign load_demo plants, read as an experiment."""

import pytest

from customers.services.demo import demo_load
from experiments.services.definitions import ExperimentError
from experiments.services.demo import experiment_from_demo
from experiments.services.reports import report_refresh

pytestmark = pytest.mark.django_db


def test_the_demo_campaign_reports_the_planted_three_point_effect():
    demo_load(8000, seed=7)
    experiment = experiment_from_demo()

    body = report_refresh(experiment).body

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
    experiment_from_demo()
    with pytest.raises(ExperimentError, match="replace"):
        experiment_from_demo()
    assert experiment_from_demo(replace=True).exposures.exists()
