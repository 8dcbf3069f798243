"""Launching a campaign from the browser: the confirm step, empty values caught before
anything is sent, a visible `launching` state run by a real worker, and one counts line
on the list and the page (issue 10, what was seen 3 and 9; issue 14, launch off the request)."""

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, LedgerEntry
from campaigns.services.drafts import campaign_create
from customers.models import Customer
from tests.browser import seed
from tests.browser.conftest import ARTIFACTS, login
from tests.conftest import worker_start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shooter(page, test_name: str):
    folder = ARTIFACTS / test_name
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(name: str):
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(300)  # let the email frames paint after the scroll
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def wide_page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_seen_3_an_offer_code_with_no_offer_is_stopped_before_launch_and_a_blank_name_is_warned(
    wide_page, live_server, marketer, request
):
    page, shot = wide_page, shooter(wide_page, request.node.name)
    segment = seed.shop()
    login(page, live_server, marketer)
    # Composed in the page as the marketer did: own text, `{{ offer.code }}`, no offer attached.
    page.goto(f"{live_server.url}/campaigns/new/")
    page.get_by_label("Campaign name").fill("Code for nobody")
    page.get_by_label("Segment", exact=True).select_option(str(segment.id))
    page.locator("#v0_subject").fill("Your code inside")
    page.locator("#v0_layout").select_option("")
    page.locator("#variant-0 summary").click()
    page.locator("#v0_text").fill("Hi {{ customer.first_name }}, Code {{ offer.code }}")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="Code for nobody")).to_be_visible()
    # The draft saved (a draft may be unfinished), and its page already says why it cannot go.
    expect(page.get_by_role("alert").first).to_contain_text("{{ offer.code }}, which is empty for every recipient")
    page.get_by_role("link", name="Review and launch").click()
    expect(page.get_by_role("heading", name=re.compile("Review and launch"))).to_be_visible()
    expect(page.locator("#confirm-problems")).to_contain_text(
        "prints {{ offer.code }}, which is empty for every recipient (the campaign has no offer)")
    expect(page.get_by_role("button", name=re.compile("^Launch"))).to_have_count(0)
    shot("confirm-refuses-empty-code")
    campaign = Campaign.objects.get(name="Code for nobody")
    # Even a hand-made POST launches nothing: the task's own check fails it with the reason.
    assert campaign.state == "draft" and not LedgerEntry.objects.exists()

    # Blank for some recipients: a warning on the confirm step, which must be read to launch.
    Customer.objects.filter(external_id__in=["shop3", "shop5"]).update(name="")
    warned = campaign_create({"name": "Hello by name", "segment": segment.name, "holdout": 0.1,
                              "variants": [{"name": "A", "subject": "Hi {{ customer.first_name }}", "text": "Hello"}]})
    page.goto(f"{live_server.url}/campaigns/{warned.id}/confirm/")
    expect(page.locator("#confirm-warnings")).to_contain_text(
        "prints {{ customer.first_name }}, which is empty for 2 of 40 recipients (5.0%, e.g. customer shop3)")
    expect(page.get_by_role("button", name="Launch to 40 customers")).to_be_visible()
    expect(page.get_by_label("I have read the warnings above")).to_be_visible()
    shot("confirm-warns-blank-name")


def test_seen_9_launch_goes_through_a_confirm_step_shows_launching_then_the_same_counts_everywhere(
    wide_page, live_server, marketer, tmp_path, request
):
    page, shot = wide_page, shooter(wide_page, request.node.name)
    segment = seed.shop()
    campaign = campaign_create({
        "name": "Spring letters", "segment": segment.name, "holdout": 0.1,
        "offer": {"name": "Spring", "discount": "20% off", "code": "SPRING20", "landing_url": "https://shop.example.com/s"},
        "variants": [
            {"name": "A", "subject": "{{ customer.first_name }}, 20% off", "layout": "spotlight",
             "content": {"headline": "Hello {{ customer.first_name }}", "body": "Spring is here.", "button": "Shop now",
                         "brand": "Acme"}},
            {"name": "B", "subject": "Spring at Acme", "layout": "letter",
             "content": {"body": "Dear {{ customer.first_name }}, the sale is on.", "button": "Shop", "brand": "Acme"}},
        ],
    })
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/campaigns/{campaign.id}/")
    # A draft reads as a draft, not as a finished send.
    expect(page.locator(".progress .counts")).to_have_text("Not launched yet")
    expect(page.locator(".progress")).not_to_contain_text("100.0% of 0")
    expect(page.locator(".progress")).not_to_contain_text("messages done")
    shot("draft")

    # One click does not launch: it opens the confirm step with the facts and a sample email.
    page.get_by_role("link", name="Review and launch").click()
    expect(page.locator("#confirm-audience")).to_contain_text("40 customers")
    expect(page.locator("#confirm-held-out")).to_contain_text("about 4")
    expect(page.locator("#confirm-treated")).to_contain_text("about 36")
    expect(page.locator("#confirm-send-time")).to_contain_text("As soon as launched")
    expect(page.locator("#confirm-provider")).to_contain_text("outbox")
    expect(page.locator("#confirm-mde")).to_be_visible()
    first = Customer.objects.filter(country="US").exclude(email="").order_by("id").first()
    expect(page.frame_locator(".confirm-sample iframe").locator("body")).to_contain_text(f"Hello {first.name.split()[0]}")
    expect(page.frame_locator(".confirm-sample iframe").locator("body")).to_contain_text("SPRING20")
    assert Campaign.objects.get(id=campaign.id).state == "draft"
    shot("confirm")
    page.locator("label[for=c-phone]").click()
    shot("confirm-phone-sample")

    # Launch: the request only records it; the page shows `launching` until a worker runs it.
    page.get_by_role("button", name="Launch to 40 customers").click()
    expect(page.locator(".progress .state")).to_have_text("Launching")
    expect(page.locator(".progress")).to_contain_text("being written in the background")
    assert not LedgerEntry.objects.filter(campaign=campaign).exists()
    shot("launching")
    worker = worker_start(tmp_path / "worker.log")
    try:
        expect(page.locator(".progress .state")).to_have_text("Completed", timeout=90_000)
        held = LedgerEntry.objects.filter(campaign=campaign, status="held_out").count()
        line = f"{40 - held:,} sent" + (f" · {held:,} held out" if held else "")  # a 10% draw of 40 may be empty
        expect(page.locator(".progress .counts")).to_have_text(line)
        shot("completed")
        page.goto(f"{live_server.url}/campaigns/")
        row = page.locator("tr", has_text="Spring letters")
        expect(row.locator(".counts")).to_have_text(line)
        shot("list")
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_a_launch_that_fails_in_the_worker_shows_why_and_its_retry_goes_through(
    wide_page, live_server, marketer, celery_worker_process, request
):
    page, shot = wide_page, shooter(wide_page, request.node.name)
    segment = seed.shop()
    campaign = campaign_create({
        "name": "Changed under us", "segment": segment.name, "holdout": 0.1,
        "offer": {"name": "Spring", "discount": "20% off", "code": "SPRING20"},
        "variants": [{"name": "A", "subject": "Hi {{ customer.first_name }}", "text": "Code {{ offer.code }}"}],
    })
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/campaigns/{campaign.id}/confirm/")
    expect(page.get_by_role("button", name="Launch to 40 customers")).to_be_visible()
    # Between the confirm step and the click, someone detaches the offer: the worker's own
    # check catches it, nothing is written, and the page says why and offers a retry.
    offer = campaign.offer
    Campaign.objects.filter(id=campaign.id).update(offer=None)
    page.get_by_role("button", name="Launch to 40 customers").click()
    expect(page.locator(".progress .state")).to_have_text("Failed", timeout=60_000)
    expect(page.locator(".job-error")).to_contain_text("{{ offer.code }}, which is empty for every recipient")
    expect(page.get_by_role("link", name="Retry launch")).to_be_visible()
    assert not LedgerEntry.objects.filter(campaign=campaign).exists()
    shot("launch-failed")
    Campaign.objects.filter(id=campaign.id).update(offer=offer)
    page.get_by_role("link", name="Retry launch").click()
    page.get_by_role("button", name="Launch to 40 customers").click()
    expect(page.locator(".progress .state")).to_have_text("Completed", timeout=90_000)
    shot("retried-and-sent")
    assert LedgerEntry.objects.filter(campaign=campaign).count() == 40


def test_the_confirm_step_of_a_large_audience_waits_for_the_worker_and_fills_in_by_itself(
    wide_page, live_server, marketer, tmp_path, monkeypatch, request
):
    """At a million recipients the counts take seconds: a worker computes them, the page
    shows the job and fills in the facts and the launch button when it is done."""
    from campaigns.services import launch_check

    monkeypatch.setattr(launch_check, "CHECK_INLINE_MAX", 10)  # the 40 shoppers count as large here
    page, shot = wide_page, shooter(wide_page, request.node.name)
    segment = seed.shop()
    campaign = campaign_create({
        "name": "Large letters", "segment": segment.name, "holdout": 0.1,
        "variants": [{"name": "A", "subject": "Hi {{ customer.first_name }}", "text": "Hello"}],
    })
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/campaigns/{campaign.id}/confirm/")
    expect(page.locator("#confirm-counting")).to_be_visible()
    expect(page.locator('[data-job-state="queued"]')).to_contain_text("Count and check the audience of Large letters")
    expect(page.get_by_role("button", name=re.compile("Launch to"))).to_have_count(0)
    shot("confirm-counting")
    worker = worker_start(tmp_path / "worker.log")
    try:
        expect(page.locator("#confirm-audience")).to_contain_text("40 customers", timeout=90_000)
        expect(page.get_by_role("button", name="Launch to 40 customers")).to_be_visible()
        expect(page.frame_locator(".confirm-sample iframe").locator("body")).to_contain_text("Hello")
        shot("confirm-filled-in")
    finally:
        worker.terminate()
        worker.wait(timeout=20)
