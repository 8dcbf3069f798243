"""experiments/services/definitions.py: creating experiments."""

import pytest

from experiments.models import Experiment
from experiments.services.definitions import ExperimentError, experiment_create

from ..factories import campaign_experiment

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
    with pytest.raises(ExperimentError, match=message):
        experiment_create("x", arms)
    assert not Experiment.objects.exists()


def test_create_refuses_a_name_that_exists():
    campaign_experiment(name="dup")
    with pytest.raises(ExperimentError, match="already exists"):
        campaign_experiment(name="dup")
