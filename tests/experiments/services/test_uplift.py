"""experiments/services/uplift.py: uplift models trained on experiments, scoring customers."""

import numpy as np
import pytest

from customers.models import Customer
from customers.services.demo import demo_load
from experiments import uplift
from experiments.importers import experiment_import
from experiments.models import Experiment
from experiments.services.demo import demo_campaign_date, experiment_from_demo
from experiments.services.definitions import ExperimentError
from experiments.services.uplift import (
    ModelConcerns, uplift_model_concerns, uplift_model_train, uplift_scores, uplift_segment_create,
)
from segments.models import Segment, SegmentModel
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


# --------------------------------------------------------------------------- guard rails


def _experiment_file(tmp_path, name: str, columns: dict[str, list], n: int) -> Experiment:
    rng = np.random.default_rng(9)
    treated = rng.random(n) < 0.5
    converted = rng.random(n) < 0.06
    extra = {k: v(treated, converted) if callable(v) else v for k, v in columns.items()}
    lines = [",".join(["arm", "converted", *extra])] + [
        ",".join([("t" if treated[i] else "c"), str(int(converted[i])), *(str(col[i]) for col in extra.values())])
        for i in range(n)]
    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    experiment_import(path, name=name, arm_column="arm", control="c", metrics=["converted:binary"])
    return Experiment.objects.get(name=name)


@pytest.fixture
def flat_model(tmp_path):
    """Hillstrom's case in small: nothing about a unit predicts its uplift, every score equal."""
    experiment = _experiment_file(tmp_path, "flat", {"region": ["north"] * 2000}, 2000)
    model = uplift_model_train(experiment, "t", "converted", learner="logistic", folds=3)
    customers = CustomerFactory.create_batch(20, attributes={"region": "north"})
    return model, customers


def test_a_model_scoring_everyone_the_same_is_refused_as_a_segment_without_an_override(flat_model):
    model, _ = flat_model
    # Cross-fitted held-out scores differ only by fold, so it reads as no signal.
    assert [c.code for c in uplift_model_concerns(model.id)] in (["constant_scores"], ["no_signal"])
    with pytest.raises(ModelConcerns, match="Every customer gets the same predicted uplift|No signal"):
        uplift_segment_create(model.id, 0.2, "flat top")
    assert not Segment.objects.exists() and not SegmentModel.objects.exists()


def test_with_an_override_a_top_share_of_equal_scores_is_refused_instead_of_picking_the_lowest_ids(flat_model):
    model, _ = flat_model
    with pytest.raises(ExperimentError, match="All 20 customers have the same predicted uplift") as caught:
        uplift_segment_create(model.id, 0.2, "flat top", override=True)
    assert "Take all tied" in str(caught.value) and "ties:" not in str(caught.value)
    assert not Segment.objects.exists() and not SegmentModel.objects.exists()  # scores rolled back too


def test_with_an_override_and_take_all_tied_every_tied_customer_is_in(flat_model):
    model, customers = flat_model
    segment = uplift_segment_create(model.id, 0.2, "flat top", override=True, ties="include")
    assert segment.size == 20
    assert segment.model.info["override"] is True


def test_a_unit_attribute_that_is_the_outcome_is_called_a_likely_leak(tmp_path):
    experiment = _experiment_file(tmp_path, "leaky", {"bought": lambda t, c: c.astype(int),
                                                      "age": list(range(2000))}, 2000)
    model = uplift_model_train(experiment, "t", "converted", learner="logistic", folds=3)
    concerns = uplift_model_concerns(model.id)
    assert "leakage" in [c.code for c in concerns]
    assert "the feature bought alone nearly equals the outcome" in " ".join(c.message for c in concerns)


@pytest.fixture
def noise_model(tmp_path):
    """Nothing about a unit predicts its uplift, yet this model's Qini comes out above 0."""
    ages = np.random.default_rng(3).integers(20, 70, 2000)
    experiment = _experiment_file(tmp_path, "noise", {"age": ages}, 2000)
    model = uplift_model_train(experiment, "t", "converted", learner="logistic", folds=3)
    CustomerFactory.create_batch(20, attributes={"age": 40})
    return model


def test_a_positive_qini_within_noise_is_refused_as_a_segment_without_an_override(noise_model):
    info = noise_model.info
    assert info["qini_coefficient"] > 0 and info["qini_p_value"] > 0.05
    assert [c.code for c in uplift_model_concerns(noise_model.id)] == ["no_signal"]
    assert "does not beat random targeting" in info["summary"] and "Do not target by this model" in info["summary"]
    with pytest.raises(ModelConcerns, match="No signal beyond noise"):
        uplift_segment_create(noise_model.id, 0.2, "noise top")
    assert not Segment.objects.exists() and not SegmentModel.objects.exists()

    segment = uplift_segment_create(noise_model.id, 0.2, "noise top", override=True, ties="include")
    assert segment.model.info["override"] is True
    assert segment.model.metrics["qini_p_value"] == info["qini_p_value"]
    assert "beyond noise" in segment.model.info["concerns"][0]["message"]
