"""The whole marketer journey in headless Chromium, against a live server and a real worker.

Screenshots of every step land in test-artifacts/<test name>/.
"""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import LedgerEntry
from customers.models import AttributeDefinition
from tests.browser.conftest import htmx_settled, login
from tests.factories import CustomerFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop():
    AttributeDefinition.objects.create(name="vip", type="boolean")
    for i in range(60):
        CustomerFactory(external_id=f"shop{i}", country="US" if i < 40 else "FR", attributes={"vip": i % 2 == 0})


def test_marketer_builds_a_segment_launches_a_campaign_and_reads_the_report(
    page, live_server, marketer, shop, celery_worker_process, shot
):
    login(page, live_server, marketer)
    shot("dashboard")

    # A rule segment whose count changes as a condition is added.
    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_label("Name", exact=True).fill("US VIPs")
    page.locator("#c0_field").select_option("country")
    page.locator("#c0_op").select_option("eq")
    page.locator("#c0_value").fill("US")
    expect(page.locator("#preview-count")).to_have_text("40")
    shot("segment-one-condition")
    page.get_by_role("button", name="Add condition").click()
    expect(page.locator("#c1_field")).to_be_visible()
    htmx_settled(page)
    page.locator("#c1_field").select_option("attributes.vip")
    expect(page.locator("#c1_op")).to_be_visible()
    page.locator("#c1_op").select_option("eq")
    page.locator("#c1_value").fill("true")
    expect(page.locator("#preview-count")).to_have_text("20")
    shot("segment-two-conditions")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", name="US VIPs")).to_be_visible()
    # Its members are counted by the worker; the page follows the job until it is done.
    expect(page.locator('[data-job-state="done"]')).to_contain_text("20 customers now", timeout=60_000)

    # A campaign with two variants and a 10% holdout, on the outbox provider.
    page.goto(f"{live_server.url}/campaigns/new/")
    page.get_by_label("Campaign name").fill("VIP weekend")
    page.get_by_label("Segment", exact=True).select_option(label="US VIPs (20)")
    expect(page.locator("#estimate-text")).to_contain_text("20")
    page.locator("#v0_name").fill("Warm")
    page.locator("#v0_subject").fill("Hello {{ customer.name }}, a weekend treat")
    page.locator("#v0_layout").select_option("")  # the marketer's own HTML and text
    page.locator("#variant-0 summary").click()
    page.locator("#v0_text").fill("Hi {{ customer.name }}, enjoy 20% off.")
    page.locator("#v0_html").fill("<p>Hi {{ customer.name }}, enjoy <b>20% off</b>.</p>")
    page.get_by_role("button", name="+ Add variant").click()
    page.locator("#v1_name").fill("Plain")
    page.locator("#v1_subject").fill("20% off this weekend")
    page.locator("#v1_layout").select_option("")
    page.locator("#variant-1 summary").click()
    page.locator("#v1_text").fill("20% off for you.")
    page.get_by_label(re.compile("Holdout")).fill("10")
    shot("campaign-form")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="VIP weekend")).to_be_visible()
    page.get_by_role("button", name="Show").click()
    expect(page.frame_locator("iframe.preview").locator("body")).to_contain_text("20% off")
    shot("campaign-preview")

    # Launch through the confirm step and watch the real worker take it to the end.
    page.get_by_role("link", name="Review and launch").click()
    page.get_by_role("button", name=re.compile("Launch to 20 customers")).click()
    expect(page.locator(".progress .state")).to_have_text("Completed", timeout=90_000)
    # The line states the ledger: everyone outside the holdout sent, and the holdout (a
    # 10% draw from 20 customers may be empty) named only when someone is in it.
    held = LedgerEntry.objects.filter(campaign__name="VIP weekend", status="held_out").count()
    line = f"{20 - held} sent" + (f" · {held} held out" if held else "")
    expect(page.locator(".progress .counts")).to_have_text(line)
    shot("campaign-sent")

    # The experiment report, with its charts drawn.
    page.get_by_role("link", name="experiment report").click()
    expect(page.locator("#srm")).to_be_visible()
    expect(page.locator("figure svg.chart").first).to_be_visible()
    assert page.locator("figure svg.chart").count() >= 1
    shot("experiment-report")

    # Everyone outside the holdout got exactly one message; the holdout got none.
    sent = LedgerEntry.objects.filter(campaign__name="VIP weekend").exclude(status="held_out")
    assert sent.count() == 20 - held
    page.goto(f"{live_server.url}/campaigns/outbox/")
    expect(page.locator("tbody tr")).to_have_count(sent.count())
    shot("outbox")


def test_a_viewer_finds_no_launch_button_and_is_refused_when_posting(page, live_server, shop, shot):
    from campaigns.services.drafts import campaign_create
    from segments.services import membership as segment_services

    segment = segment_services.segment_create({"name": "everyone-us", "rule": {"field": "country", "op": "eq", "value": "US"}})
    segment_services.segment_refresh(segment)
    campaign = campaign_create({
        "name": "quiet", "segment": "everyone-us", "holdout": 0.1,
        "variants": [{"name": "A", "subject": "Hi", "text": "Hello"}, {"name": "B", "subject": "Hey", "text": "Hello"}],
    })
    viewer = UserFactory(role="Viewer")
    login(page, live_server, viewer)
    page.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    expect(page.get_by_role("heading", name="quiet")).to_be_visible()
    expect(page.get_by_role("button", name="Launch")).to_have_count(0)
    shot("viewer-campaign")
    status = page.evaluate(
        """async (url) => {
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            const response = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}});
            return response.status;
        }""",
        f"{live_server.url}/campaigns/{campaign.id}/launch/",
    )
    assert status == 403
    campaign.refresh_from_db()
    assert campaign.state == "draft"
