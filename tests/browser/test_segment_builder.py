"""The rule builder reads as sentences, a saved segment can be edited (a new revision, the
history shown) and duplicated, and the migration page answers (issue 10, seen 8 and 4)."""

import pytest
from playwright.sync_api import expect

from customers.models import AttributeDefinition
from segments.models import Segment
from segments.services import membership
from tests.browser.conftest import htmx_settled, login
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def patient(page):
    page.set_default_timeout(60_000)  # the machine is shared: a first page can take a while


@pytest.fixture
def shop():
    AttributeDefinition.objects.create(name="vip", type="boolean")
    for i in range(30):
        CustomerFactory(external_id=f"s{i}", country="US" if i < 20 else "FR", attributes={"vip": i % 2 == 0})


def test_conditions_read_as_sentences_errors_name_the_condition_and_a_saved_segment_is_edited(
    page, live_server, marketer, shop, shot
):
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_label("Name", exact=True).fill("US VIPs")
    page.locator("#c0_field").select_option("country")
    expect(page.locator("#c0_op option").first).to_have_text("is")
    page.locator("#c0_op").select_option(label="is one of")
    page.locator("#c0_value").fill("US")
    expect(page.locator("#preview-count")).to_have_text("20")
    page.get_by_role("button", name="Add condition").click()
    expect(page.locator("#c1_field")).to_be_visible()
    htmx_settled(page)
    page.locator("#c1_field").select_option("attributes.vip")
    expect(page.locator("#c1_op")).to_be_visible()
    page.locator("#c1_value").fill("perhaps")
    problem = page.locator("#preview [role=alert]")
    expect(problem).to_contain_text("Condition 2 (vip): Expected true or false, got a text")
    expect(problem).not_to_contain_text("rule.all")
    expect(problem).not_to_contain_text("attributes.vip")
    shot("builder-error-names-the-condition")
    page.locator("#c1_value").fill("true")
    expect(page.locator("#preview-count")).to_have_text("10")
    shot("builder-two-conditions")
    page.get_by_role("button", name="Save segment").click()
    expect(page.locator("#rule-sentence")).to_have_text("Customers whose Country is one of US and whose vip is true.")
    shot("saved-rule-as-a-sentence")

    page.get_by_role("link", name="Edit").click()
    expect(page.locator("#c0_value")).to_have_value("US")
    page.locator("#c0_value").fill("US, FR")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#rule-sentence")).to_have_text("Customers whose Country is one of US, FR and whose vip is true.")
    history = page.locator("#revisions")
    expect(history).to_contain_text("Country is one of US and whose vip is true")
    expect(history).to_contain_text("Country is one of US, FR")
    shot("edited-with-history")

    page.get_by_role("button", name="Duplicate").click()
    expect(page.get_by_role("heading", name="Edit Copy of US VIPs")).to_be_visible()
    shot("duplicate-opens-in-the-builder")
    assert Segment.objects.filter(name="Copy of US VIPs").exists()


def test_the_migration_page_shows_how_a_family_moved(page, live_server, viewer, shop, shot):
    tiers = [membership.segment_create({"name": n, "family": "where", "rank": r, "rule": {
        "field": "country", "op": "eq", "value": c}}) for n, r, c in (("Americans", 0, "US"), ("French", 1, "FR"))]
    membership.segment_refresh(tiers[0])
    membership.segment_refresh(tiers[0])
    login(page, live_server, viewer)
    page.goto(f"{live_server.url}/segments/migration/?family=where")
    expect(page.get_by_text("From refresh 1 to 2: 30 stayed, 0 moved")).to_be_visible()
    expect(page.locator("figure svg")).to_be_visible()
    shot("migration")
