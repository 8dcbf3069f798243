import pytest

from tests.browser.conftest import login
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_viewer_logs_in_and_finds_a_customer(page, live_server, viewer, shot):
    CustomerFactory(name="Grace Hopper", external_id="gh1")
    login(page, live_server, viewer)
    shot("dashboard")
    page.get_by_role("link", name="Customers").click()
    page.get_by_label("Search").fill("Grace")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="gh1").click()
    assert page.get_by_role("heading", name="Grace Hopper").is_visible()
    shot("customer")
