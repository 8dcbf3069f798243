"""Issue 10, items 5, 6, 7 and 10 of "What was seen", driven in Chromium: reports a manager
reads without help, "too early" for a campaign launched minutes ago, numbers that never
contradict each other, and the site's chrome (404 in the layout, favicon, separators, one
date format, titled charts). Each test failed on the pages as they were before.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser import seed
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ONE_DATE = re.compile(r"^\d{1,2} [A-Z][a-z]{2} \d{4}(, \d{2}:\d{2} [A-Z]{2,5})?$")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


@pytest.fixture
def world(db):
    segment = seed.shop()
    return {"segment": segment, "experiment": seed.finished_experiment(), "campaign": seed.fresh_campaign(segment)}


def _row(page, metric_heading: str):
    return page.locator("section.metric", has=page.get_by_role("heading", name=re.compile(f"^{metric_heading}"))) \
        .locator("table.results tbody tr").first


def test_item5_report_reads_points_lift_p_bounds_plain_test_names_and_an_interval_bar(
        page, live_server, marketer, world, shot):
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/experiments/{world['experiment'].id}/")
    conversion = _row(page, "conversion")
    expect(conversion).to_contain_text("+3.55 points")        # not 0.03550
    expect(conversion).to_contain_text("+236.7%")             # not 2.3667
    expect(conversion).to_contain_text("two-proportion z-test")
    expect(conversion.locator("svg.ci-bar")).to_have_count(1)
    expect(conversion.locator(".badge")).to_have_text("Significant")
    revenue = _row(page, "revenue")
    expect(revenue).to_contain_text("< 0.0001")               # not 0.00001
    expect(revenue).to_contain_text("Welch's t-test")
    visit = _row(page, "visit")                               # nobody visited: 0% vs 0%
    expect(visit.locator(".badge")).to_have_text("Not testable")
    tables = page.locator("table.results").all_inner_texts()
    for raw in ("two_proportion_ztest", "welch_t", "fisher_exact"):
        assert not any(raw in t for t in tables)
    assert not any(re.search(r"(?<![\d.])0\.\d{5,}", t) for t in tables), "raw decimals in a results table"
    expect(page.locator("#verdict .badge")).to_have_text("Significant")
    expect(page.get_by_text(re.compile(r"this test had little chance \(\d+%\) of detecting"))).to_be_visible()
    shot("report")


def test_item6_dashboard_calls_a_campaign_launched_minutes_ago_too_early_with_the_date(
        page, live_server, marketer, world, shot):
    login(page, live_server, marketer)
    row = page.locator("#verdicts tr", has=page.get_by_role("link", name="Weekend treat"))
    expect(row.locator(".badge").first).to_have_text("Too early")
    expect(row).to_contain_text(re.compile(r"ready on \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC"))
    main = page.locator("main").inner_text()
    assert "no significant difference" not in main.lower()
    assert "CI n/a" not in main
    shot("dashboard")
    page.goto(f"{live_server.url}/experiments/{world['campaign'].experiment_id}/")
    expect(page.locator("#verdict .badge")).to_have_text("Too early")
    for badge in page.locator("section.metric").first.locator("table.results .badge").all():
        expect(badge).to_have_text("Too early")
    shot("fresh-report")


def test_item7_rounding_never_makes_two_numbers_contradict(page, live_server, marketer, world, shot):
    login(page, live_server, marketer)
    page.goto(f"{live_server.url}/experiments/{world['experiment'].id}/")
    cells = _row(page, "conversion").locator("td").all_inner_texts()
    control, arm = (float(c.strip().rstrip("%")) for c in cells[:2])
    diff = float(re.match(r"([+-][\d.]+) points", cells[2]).group(1))
    assert (control, arm) == (1.50, 5.05)
    assert abs((arm - control) - diff) < 0.006, (control, arm, diff)
    expect(page.locator("#verdict")).to_contain_text("from 1.50% to 5.05% (+3.55 points")

    page.goto(f"{live_server.url}/experiments/plan/?baseline=2&lift=10")
    answer = page.locator("#plan-result")
    expect(answer).to_contain_text("from 2.00% to 2.20%")
    page.get_by_label("Smallest relative lift worth detecting (%)").fill("0.1")
    expect(answer).to_contain_text("from 2.000% to 2.002%")   # htmx re-renders: still two different numbers
    assert "from 2% to 2%" not in answer.inner_text()
    shot("planner")


def test_item10_site_chrome_404_in_layout_favicon_separators_one_date_format_titled_charts(
        page, live_server, marketer, world, shot):
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    login(page, live_server, marketer)
    expect(page.locator(".card", has_text="Customers").locator(".big")).to_have_text(re.compile(r"^\d{1,3}(,\d{3})+$"))
    expect(page.locator("#verdicts")).to_contain_text(re.compile(r"\d,\d{3}|\d units"))
    for path in ("/", "/experiments/", f"/experiments/{world['experiment'].id}/", "/segments/", "/campaigns/",
                 f"/campaigns/{world['campaign'].id}/"):
        page.goto(live_server.url + path)
        text = page.locator("main").inner_text()
        assert not ISO_DATE.search(text), f"an ISO date on {path}: {ISO_DATE.search(text).group(0)}"
    assert missing == [], f"404s while browsing: {missing}"  # the favicon among them, before

    page.goto(f"{live_server.url}/")
    for cell in page.locator("#verdicts td.nowrap").all_inner_texts():
        assert ONE_DATE.match(cell.strip()), cell
    expect(page.get_by_text("one refresh so far")).to_be_visible()  # not an empty sparkline box

    page.goto(f"{live_server.url}/experiments/{world['experiment'].id}/")
    figures = page.locator("main figure")
    assert figures.count() >= 3
    for i in range(figures.count()):
        expect(figures.nth(i).locator("figcaption")).not_to_be_empty()

    page.goto(f"{live_server.url}/experiments/")
    page.get_by_text("Import a test that ran elsewhere").click()
    expect(page.locator("#import-help")).to_contain_text("manage.py import_experiment")

    response = page.goto(f"{live_server.url}/no-such-page/")
    assert response.status == 404
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("heading", name="This page does not exist")).to_be_visible()
    shot("not-found")
