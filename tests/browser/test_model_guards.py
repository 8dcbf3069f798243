"""A model with no signal or a likely leak says so before it becomes a segment; a top share
of equal scores never picks customers 1 to N; metrics are explained in words (issue 10,
seen 2 and 10). Headless Chromium, a live server and a real worker."""

import numpy as np
import pytest
from playwright.sync_api import expect

from core.models import Job
from customers.models import AttributeDefinition
from experiments.importers import experiment_import
from experiments.models import Experiment
from experiments.services.uplift import uplift_model_train
from segments.models import Segment
from segments.services import training
from tests.browser.conftest import login
from tests.conftest import wait_for
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def patient(page):
    page.set_default_timeout(60_000)


@pytest.fixture
def flat_uplift(tmp_path):
    """Nothing about a unit predicts its uplift: every customer gets the same score."""
    rng = np.random.default_rng(3)
    treated, converted = rng.random(2000) < 0.5, rng.random(2000) < 0.06
    lines = ["arm,converted,region"] + [f"{'t' if t else 'c'},{int(c)},north" for t, c in zip(treated, converted)]
    path = tmp_path / "flat.csv"
    path.write_text("\n".join(lines) + "\n")
    experiment_import(path, name="flat", arm_column="arm", control="c", metrics=["converted:binary"])
    model = uplift_model_train(Experiment.objects.get(name="flat"), "t", "converted", learner="logistic", folds=3)
    CustomerFactory.create_batch(20, attributes={"region": "north"})
    return model


def test_an_uplift_model_with_equal_scores_warns_needs_an_override_and_never_picks_the_first_ids(
    page, live_server, marketer, flat_uplift, celery_worker_process, shot
):
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/experiments/uplift/{flat_uplift.id}/")
    warning = page.locator("#concerns")
    expect(warning).to_contain_text("Do not target by this model")
    shot("uplift-warning")
    page.get_by_role("button", name="Create segment").click()
    expect(page.locator(".messages")).to_contain_text("tick the box")
    assert not Job.objects.exists()

    page.get_by_label("I read the warning above and want a segment from this model anyway").check()
    page.get_by_role("button", name="Create segment").click()
    status = page.locator(".job").first
    expect(status).to_have_attribute("data-job-state", "failed", timeout=120_000)
    expect(status.locator(".job-error")).to_contain_text("All 20 customers have the same predicted uplift")
    shot("top-share-of-equal-scores-refused")
    assert not Segment.objects.exists()

    page.get_by_label("I read the warning above and want a segment from this model anyway").check()
    page.get_by_label("take all tied customers, even past the share").check()
    page.get_by_role("button", name="Create segment").click()
    done = page.locator('.job[data-job-state="done"]')
    expect(done).to_contain_text("made with 20 customers", timeout=120_000)
    shot("all-tied-taken")
    assert Segment.objects.get().size == 20


def test_a_leaking_model_holds_its_segments_explains_its_metrics_and_makes_them_on_override(
    page, live_server, marketer, celery_worker_process, shot
):
    AttributeDefinition.objects.create(name="upgraded", type="boolean")
    AttributeDefinition.objects.create(name="premium_since_upgrade", type="boolean")
    for i in range(80):
        CustomerFactory(attributes={"upgraded": i % 2 == 0, "premium_since_upgrade": i % 2 == 0})
    model = training.model_train("propensity", target="upgraded")
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/segments/models/{model.id}/")
    expect(page.locator("#concerns")).to_contain_text("Likely leak: the feature premium_since_upgrade")
    roc = page.locator('tr[data-metric="roc_auc"]')
    expect(roc).to_contain_text("ROC AUC")
    expect(roc).to_contain_text("coin flip")
    expect(page.locator('tr[data-metric="brier"]')).to_contain_text("lower is better")
    shot("leaky-model-held-with-metrics-explained")
    assert not Segment.objects.exists()

    page.get_by_label("I read the warning and want its segments anyway").check()
    page.get_by_role("button", name="Make its segments anyway").click()
    expect(page.locator('.job[data-job-state="done"]')).to_be_visible(timeout=120_000)
    wait_for(lambda: Segment.objects.count() == 3, timeout=30, what="its three band segments")
    shot("segments-made-on-override")


@pytest.fixture
def noise_uplift(tmp_path):
    """Age says nothing about who gains, yet the held-out Qini comes out above 0: chance."""
    rng = np.random.default_rng(9)
    treated, converted = rng.random(2000) < 0.5, rng.random(2000) < 0.06
    ages = np.random.default_rng(3).integers(20, 70, 2000)
    lines = ["arm,converted,age"] + [f"{'t' if t else 'c'},{int(c)},{a}" for t, c, a in zip(treated, converted, ages)]
    path = tmp_path / "noise.csv"
    path.write_text("\n".join(lines) + "\n")
    experiment_import(path, name="noise", arm_column="arm", control="c", metrics=["converted:binary"])
    model = uplift_model_train(Experiment.objects.get(name="noise"), "t", "converted", learner="logistic", folds=3)
    for age in range(20, 40):
        CustomerFactory(attributes={"age": age})
    return model


def test_an_uplift_model_whose_positive_qini_chance_reaches_warns_and_needs_an_override(
    page, live_server, marketer, noise_uplift, celery_worker_process, shot
):
    assert noise_uplift.info["qini_coefficient"] > 0  # the sign alone would have let it through
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/experiments/uplift/{noise_uplift.id}/")
    expect(page.locator("#qini")).to_contain_text("reaches it by chance with p = ")
    warning = page.locator('#concerns [data-concern="no_signal"]')
    expect(warning).to_contain_text("No signal beyond noise")
    expect(warning).to_contain_text("Treat everyone or no one")
    shot("uplift-within-noise-warning")
    page.get_by_role("button", name="Create segment").click()
    expect(page.locator(".messages")).to_contain_text("tick the box")
    assert not Job.objects.exists()

    page.get_by_label("I read the warning above and want a segment from this model anyway").check()
    page.get_by_role("button", name="Create segment").click()
    expect(page.locator('.job[data-job-state="done"]')).to_contain_text("made with", timeout=120_000)
    segment = Segment.objects.get()
    page.goto(f"{live_server.url}/segments/models/{segment.model_id}/")
    expect(page.locator("#concerns")).to_contain_text("No signal beyond noise")
    expect(page.locator('tr[data-metric="qini_p_value"]')).to_contain_text("Qini p-value")
    shot("uplift-segment-model-within-noise")
