"""The campaign composer in Chromium: variants added and removed as needed, a layout that
writes the markup, a live preview for a chosen real customer at desktop and phone widths,
draft editing, and a test send (issue 10, "What to build": the campaign composer)."""

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign, LedgerEntry, OutboxMessage
from customers.models import Customer
from tests.browser import seed
from tests.browser.conftest import ARTIFACTS, htmx_settled, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_marketer_composes_variants_previews_them_for_a_customer_and_sends_a_test(browser, live_server, marketer, request):
    segment = seed.shop()
    page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
    page.set_default_timeout(15_000)
    shot = shooter(page, request.node.name)
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.get_by_label("Campaign name").fill("Spring sale")
    page.get_by_label("Segment", exact=True).select_option(str(segment.id))
    page.locator("#offer_name").fill("Spring 20")
    page.locator("#offer_discount").fill("20% off everything")
    page.locator("#offer_code").fill("SPRING20")
    page.get_by_label("Landing page", exact=True).fill("https://shop.example.com/spring")

    # Variant A in the spotlight layout: the marketer writes words, the layout the markup.
    page.locator("#v0_subject").fill("{{ customer.first_name }}, spring is on us")
    page.locator("#v0_brand").fill("Acme Outdoor")
    page.locator("#v0_headline").fill("Hello {{ customer.first_name }}, spring is here")
    page.locator("#v0_body").fill("Twenty percent off everything in the shop this week.\n\nSee you soon!")
    frame = page.frame_locator("#live-preview iframe.email-frame")
    expect(frame.locator("body")).to_contain_text("SPRING20", timeout=20_000)
    expect(frame.locator("body")).to_contain_text("Hello Name, spring is here")
    expect(page.locator("#live-preview .subject")).to_have_text("Name, spring is on us")
    # The preview is for a real customer, chosen from the segment.
    page.get_by_label("As it reads for").select_option(str(Customer.objects.get(external_id="shop7").id))
    expect(page.locator("#live-preview")).to_contain_text("shop7@example.com")
    width_desktop = page.locator("#live-preview iframe.email-frame").bounding_box()["width"]
    page.evaluate("window.scrollTo(0, 0)")
    shot("composer-desktop")
    page.locator("label[for=w-phone]").click()
    expect(page.locator("#live-preview iframe.email-frame")).to_have_css("width", "375px")
    page.evaluate("window.scrollTo(0, 0)")
    shot("composer-phone")
    assert width_desktop > 500

    # Variants as needed: add two, remove one, preview the one left.
    page.get_by_role("button", name="+ Add variant").click()
    expect(page.locator(".variant")).to_have_count(2)
    page.get_by_role("button", name="+ Add variant").click()
    expect(page.locator(".variant")).to_have_count(3)
    htmx_settled(page)
    page.get_by_role("button", name="Remove variant C").click()
    expect(page.locator(".variant")).to_have_count(2)
    page.locator("#v1_subject").fill("A letter for {{ customer.first_name }}")
    page.locator("#v1_layout").select_option("letter")
    page.locator("#v1_body").fill("Dear {{ customer.first_name }},\n\nour spring sale starts today.")
    page.locator("#variant-1").get_by_label("Preview this one").check()
    expect(page.locator("#live-preview .subject")).to_have_text("A letter for Name", timeout=20_000)
    expect(frame.locator("body")).to_contain_text("our spring sale starts today")
    page.locator("label[for=w-desktop]").click()
    shot("composer-two-variants")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="Spring sale")).to_be_visible()
    campaign = Campaign.objects.get(name="Spring sale")
    assert [(v.name, v.layout) for v in campaign.variants.order_by("position")] == [("A", "spotlight"), ("B", "letter")]
    assert 'style="' in campaign.variants.get(name="A").html  # inlined at save

    # Draft editing: the composer opens with what was saved; a change is kept.
    page.get_by_role("link", name="Edit draft").click()
    expect(page.locator("#v0_headline")).to_have_value("Hello {{ customer.first_name }}, spring is here")
    page.locator("#v1_body").fill("Dear {{ customer.first_name }},\n\nthe sale ends Sunday.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", name="Spring sale")).to_be_visible()
    assert "the sale ends Sunday" in campaign.variants.get(name="B").html

    # Test send of variant B to the marketer's own address, through the provider (outbox).
    page.locator("#test-variant").select_option("B")
    page.locator("#test-address").fill("marketer@example.com")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator(".messages")).to_contain_text("Test of variant B sent to marketer@example.com")
    shot("test-sent")
    message = OutboxMessage.objects.get()
    assert message.to == ["marketer@example.com"] and message.subject == "[Test] A letter for Name"
    assert not LedgerEntry.objects.exists()


def shooter(page, test_name: str):
    """Screenshots of this page (1440 px wide: the composer's preview sits beside the form)
    into test-artifacts/<test>/, numbered in order."""
    folder = ARTIFACTS / test_name
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(name: str):
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
