"""The pages a marketer sees first, at a desktop (1440 px) and a phone (390 px) width: the
screenshots in test-artifacts/ are what the closing notes show and what a person looks at."""

import pytest
from playwright.sync_api import expect

from tests.browser import seed
from tests.browser.conftest import ARTIFACTS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_tour_of_the_main_pages_at_each_width(browser, live_server, marketer, width):
    segment = seed.shop()
    experiment = seed.finished_experiment()
    seed.fresh_campaign(segment)
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h})
    page = context.new_page()
    page.set_default_timeout(15_000)
    folder = ARTIFACTS / f"tour-{width}"
    folder.mkdir(parents=True, exist_ok=True)
    login(page, live_server, marketer)
    pages = {
        "dashboard": "/",
        "rule-builder": "/segments/new/",
        "composer": "/campaigns/new/",
        "report": f"/experiments/{experiment.id}/",
        "report-breakdown": f"/experiments/{experiment.id}/?by=country",
        "experiments": "/experiments/",
        "planner": "/experiments/plan/?baseline=2&lift=10",
        "segments": "/segments/",
        "campaigns": "/campaigns/",
        "not-found": "/no-such-page/",
    }
    too_wide = {}
    for name, path in pages.items():
        page.goto(live_server.url + path)
        expect(page.locator("body")).to_be_visible()
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
        # Usable at a phone's width: nothing pushes the page sideways (wide tables scroll inside
        # their own box instead).
        wider = page.evaluate(OVERFLOWING)
        # A report's tables and the dashboard's read whole at either width: none scrolls
        # sideways inside its own box, and each one's rows fill it.
        if name.startswith("report") or name == "dashboard":
            wider += page.evaluate(TABLES_NOT_FITTING)
        if wider:
            too_wide[name] = wider
    context.close()
    assert not too_wide, too_wide


OVERFLOWING = """() => {
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth <= width + 1) return [];
    // The page scrolls sideways: name the widest elements so the failure says where.
    return [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > width + 1)
        .sort((a, b) => b.getBoundingClientRect().right - a.getBoundingClientRect().right)
        .slice(0, 8).map(e => e.tagName.toLowerCase() + '.' + (e.getAttribute('class') || '')
                              + ' ' + Math.round(e.getBoundingClientRect().right));
}"""


TABLES_NOT_FITTING = """() => [...document.querySelectorAll('main table')].flatMap(table => {
    const name = 'table.' + (table.getAttribute('class') || '') + ' under ' + (table.closest('section')?.id
        || table.closest('section')?.querySelector('h2')?.textContent.trim() || 'main');
    const found = [];
    for (let box = table; box && box.tagName !== 'MAIN'; box = box.parentElement) {
        if (box.scrollWidth > box.clientWidth + 1)
            found.push(name + ' scrolls sideways in ' + box.tagName.toLowerCase() + ': '
                       + box.scrollWidth + ' > ' + box.clientWidth);
    }
    const inner = table.clientWidth;
    for (const row of table.querySelectorAll('tr')) {
        const width = row.getBoundingClientRect().width;
        if (width && width < inner - 2) { found.push(name + ' row ' + Math.round(width) + ' px of ' + inner); break; }
    }
    return found;
})"""
