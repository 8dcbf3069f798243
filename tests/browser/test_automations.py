"""An automation built in the browser (steps and variants added and removed in place, a live
preview for a real customer, the rules read as sentences, an error naming its step and field),
triggered by an event posted to /api/events/, sent by a real worker: the message is in the
outbox and the entry in the automation's funnel.

Screenshots land in test-artifacts/<test name>/.
"""

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.test import APIClient

from campaigns.models import AutomationSend, OutboxMessage
from campaigns.tasks import automation_tick_task
from core.db import is_postgres
from tests.browser.conftest import login
from tests.conftest import wait_for
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not is_postgres(), reason="automations need PostgreSQL")]


def test_marketer_builds_an_automation_an_event_triggers_it_and_the_funnel_shows_the_entry(
    page, live_server, marketer, celery_worker_process, shot
):
    CustomerFactory(external_id="buyer1", email="buyer1@example.com", name="Ada Buyer")
    login(page, live_server, marketer)

    # Build: an event trigger, no holdout (so the one entrant is treated)
    page.goto(f"{live_server.url}/automations/new/")
    shot("builder-empty")
    page.get_by_label("Automation name").fill("Browse abandon")
    page.get_by_label("does something").check()
    page.get_by_label("Event kind").fill("browse")
    page.locator("#holdout").fill("0")
    # the rules read back as sentences while they are set
    sentences = page.locator("#sentences")
    expect(sentences).to_contain_text("Starts when a customer does “browse”")
    expect(sentences).to_contain_text("Nobody is held out")
    expect(sentences).to_contain_text("A customer leaves early when they place an order.")

    # Step 1, variant a, previewed live for the real customer
    page.locator("#s0v0_subject").fill("Still thinking about it, {{ customer.first_name }}?")
    page.locator("#s0v0_text").fill("Hi {{ customer.name }}, it is still in stock. {{ unsubscribe_url }}")
    preview = page.locator("#live-preview")
    expect(preview.locator(".subject")).to_have_text("Still thinking about it, Ada?")
    expect(preview).to_contain_text("Step 1, variant a")
    expect(preview.locator(".text-version")).to_contain_text("Hi Ada Buyer, it is still in stock.")

    # A second variant added in place, previewed, then removed again
    page.get_by_role("button", name="+ Add variant to this step").click()
    expect(page.locator("#s0v1")).to_be_visible()
    page.locator("#s0v1_subject").fill("{{ customer.first_name }}, your cart misses you")
    page.locator("#s0v1_text").fill("Come back. {{ unsubscribe_url }}")
    page.locator("#s0v1").get_by_label("Preview this one").check()
    expect(preview.locator(".subject")).to_have_text("Ada, your cart misses you")
    expect(sentences).to_contain_text("sends one of “a” or “b”")
    shot("builder-two-variants")
    page.get_by_role("button", name="Remove variant b").click()
    expect(page.locator("#s0v1")).to_have_count(0)
    expect(sentences).to_contain_text("Step 1: at once after entry, sends “a”.")

    # A second step added in place, left without a subject: the error names the step and field
    page.get_by_role("button", name="+ Add step").click()
    expect(page.locator("#step-1")).to_be_visible()
    expect(sentences).to_contain_text("Step 2: 1 day after step 1, sends “a”.")
    page.get_by_role("button", name="Start the automation").click()
    expect(page.locator("#builder-error")).to_contain_text("Step 2, variant a: subject is required")
    expect(page.locator("#s1v0_subject")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#s0v0_subject")).to_have_value("Still thinking about it, {{ customer.first_name }}?")
    shot("builder-error")
    # ... removed, and the automation starts
    page.locator("#step-1").get_by_role("button", name="Remove this step").click()
    expect(page.locator("#step-1")).to_have_count(0)
    expect(sentences).not_to_contain_text("Step 2")
    shot("builder-filled")
    page.get_by_role("button", name="Start the automation").click()
    expect(page.get_by_role("heading", name="Browse abandon")).to_be_visible()
    expect(page.locator(".flow-step")).to_have_count(1)
    shot("automation-started")

    # Trigger: the product posts the event
    api = APIClient()
    api.force_authenticate(marketer)
    answer = api.post("/api/events/", {"events": [
        {"customer": "buyer1", "kind": "browse", "occurred_at": timezone.now().isoformat(), "properties": {"sku": "S1"}},
    ]}, format="json")
    assert answer.status_code == 200 and answer.json()["created"] == 1

    def sent():
        automation_tick_task.delay()  # what beat does every few seconds
        return AutomationSend.objects.filter(status="sent").exists()

    wait_for(sent, timeout=60, interval=1.0, what="the worker to send the step")

    # The message is in the outbox...
    page.goto(f"{live_server.url}/campaigns/outbox/")
    expect(page.get_by_text("Still thinking about it, Ada?")).to_be_visible()
    shot("outbox")
    assert OutboxMessage.objects.get().to == ["buyer1@example.com"]

    # ... and the entry in the funnel (the page refreshes itself)
    page.goto(f"{live_server.url}/automations/")
    expect(page.locator("#automation-rows")).to_contain_text("Browse abandon")
    shot("list")
    page.get_by_role("link", name="Browse abandon").click()
    expect(page.locator(".funnel").first.get_by_role("row", name="entered")).to_contain_text("1")
    expect(page.locator(".funnel").first.get_by_role("row", name="step 1 sent")).to_contain_text("1")
    expect(page.locator(".step-counts")).to_contain_text("1 sent")
    shot("funnel")
