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


@pytest.mark.parametrize("days", [0, 3651, 10**6, 10**10])
def test_attribution_days_out_of_bounds_are_refused(days):
    # Issue 11 item 12: 10^6 was accepted and every page of the experiment then gave a 500.
    with pytest.raises(ExperimentError, match="attribution_days"):
        experiment_create("wide", [("a", 1, True), ("b", 1, False)], attribution_days=days)


def test_attribution_days_bound_is_model_validation_too():
    from django.core.exceptions import ValidationError

    experiment = experiment_create("wide", [("a", 1, True), ("b", 1, False)], attribution_days=3650)
    experiment.attribution_days = 10**6
    with pytest.raises(ValidationError, match="attribution_days|3650"):
        experiment.full_clean()


def test_a_stored_huge_window_still_renders(client, viewer):
    from experiments.models import Experiment

    from ..factories import expose, order

    experiment = experiment_create("wide", [("a", 1, True), ("b", 1, False)])
    order(expose(experiment, "a"), days_after=1)
    expose(experiment, "b")
    Experiment.objects.filter(id=experiment.id).update(attribution_days=10**6)  # stored before the bound
    client.force_login(viewer)
    assert client.get(f"/experiments/{experiment.id}/").status_code == 200
