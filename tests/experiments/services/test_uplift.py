"""experiments/services/uplift.py: uplift models trained on experiments, scoring customers."""

import numpy as np
import pytest

from customers.models import Customer
from customers.services.demo import demo_load
from experiments import uplift
from experiments.importers import experiment_import
from experiments.models import Experiment
from experiments.services.demo import demo_campaign_date, experiment_from_demo
from experiments.services.uplift import uplift_model_train, uplift_scores
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _top(scored: list[tuple[int, float]], fraction: float) -> list[int]:
    """Customer ids in the top ``fraction`` of predicted uplift, as a segment would take them."""
    return [scored[i][0] for i in uplift.top_fraction(np.array([s for _, s in scored]), fraction)]


def test_uplift_scores_rank_customers_with_the_responsive_attribute_first(tmp_path):
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
    model = uplift_model_train(Experiment.objects.get(name="planted"), "t", "converted",
                                        learner="logistic")
    keen = CustomerFactory.create_batch(5, attributes={"responsive": True, "age": 40})
    cool = CustomerFactory.create_batch(5, attributes={"responsive": False, "age": 40})

    top = _top(uplift_scores(model.id, customer_ids=[c.id for c in cool + keen]), 0.5)

    assert model.info["qini_coefficient"] > 0
    assert set(top) == {c.id for c in keen}


def test_uplift_on_a_customer_experiment_learns_from_behaviour_before_exposure():
    demo_load(1500, seed=4)
    experiment = experiment_from_demo()
    model = uplift_model_train(experiment, "treatment", "campaign_conversion", learner="logistic", folds=3)

    top = _top(uplift_scores(model.id), 0.1)

    assert model.feature_source == "customer_features" and "recency_days" in model.features
    assert model.info["features_as_of"] == demo_campaign_date().isoformat()
    assert len(top) == int(np.ceil(0.1 * Customer.objects.count()))
    assert len(set(top)) == len(top)
