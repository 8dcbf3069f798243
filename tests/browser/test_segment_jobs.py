"""Background jobs started from the segments pages show queued / running / done / failed
(issue 10, "What was seen" 1): headless Chromium, a live server and a real worker."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.models import Job
from tests.browser.conftest import login
from tests.conftest import wait_for
from tests.factories import CustomerFactory, OrderFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def patient(page):
    page.set_default_timeout(60_000)  # the machine is shared: a first page can take a while


@pytest.fixture
def buyers():
    """Forty customers in two clear behaviours: recent frequent buyers and old one-timers."""
    now = timezone.now()
    for i in range(40):
        customer = CustomerFactory(external_id=f"b{i}")
        orders = 8 if i % 2 else 1
        for n in range(orders):
            days = (3 + n * 4 + i % 5) if i % 2 else (300 + i)
            OrderFactory(customer=customer, amount=40 + (i % 7) * 10, ordered_at=now - timedelta(days=days))


def test_training_clusters_from_the_models_page_ends_done_with_a_link_to_the_model(
    page, live_server, marketer, buyers, celery_worker_process, shot
):
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/segments/models/")
    shot("models-page")
    page.get_by_role("button", name="Train clusters").click()
    status = page.locator(".job").first
    expect(status).to_contain_text("Train clusters (k-means)")
    shot("training-queued-or-running")
    expect(status).to_have_attribute("data-job-state", "done", timeout=120_000)
    expect(status).to_contain_text("trained on 40 customers")
    shot("training-done")
    job = Job.objects.get(kind="model_train")
    assert job.kwargs == {}  # no churn days or target rode along with a k-means model
    status.get_by_role("link").click()
    expect(page.get_by_role("heading", name="kmeans v1")).to_be_visible()


def test_a_training_that_fails_says_why_in_words_and_offers_a_retry(
    page, live_server, marketer, buyers, celery_worker_process, shot
):
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/segments/models/")
    # Nobody here churns within 2 days of the cutoff in a way a model can learn from.
    page.locator("#propensity-days").fill("2")
    page.get_by_role("button", name="Train churn propensity").click()
    status = page.locator(".job").first
    expect(status).to_have_attribute("data-job-state", "failed", timeout=120_000)
    expect(status.locator(".job-error")).to_contain_text("at least 10 customers with each outcome")
    shot("training-failed")
    status.get_by_role("button", name="Retry").click()
    retry = wait_for(lambda: Job.objects.filter(retry_of__isnull=False).first(), timeout=30, what="the retry")
    # The retry's own status replaces the failed one in place and polls until it ends.
    expect(page.locator(f"#job-{retry.pk}")).to_have_attribute("data-job-state", "failed", timeout=120_000)
    assert Job.objects.filter(kind="model_train").count() == 2
