"""Every page of the marketer's journey passes axe-core (vendored, tests/browser/vendor/) with
no serious or critical violation, at desktop width."""

import json

import pytest

from tests.browser import seed
from tests.browser.conftest import ARTIFACTS, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = (seed.__file__.rsplit("/", 1)[0] + "/vendor/axe.min.js")
BLOCKING = {"serious", "critical"}


def _journey(world) -> dict[str, str]:
    experiment, campaign, segment = world["experiment"], world["campaign"], world["segment"]
    customer = segment.memberships.first().customer_id
    return {
        "dashboard": "/",
        "customers": "/customers/",
        "customer": f"/customers/{customer}/",
        "imports": "/customers/imports/",
        "segments": "/segments/",
        "rule-builder": "/segments/new/",
        "segment": f"/segments/{segment.id}/",
        "models": "/segments/models/",
        "migration": "/segments/migration/",
        "campaigns": "/campaigns/",
        "composer": "/campaigns/new/",
        "automations": "/automations/",
        "automation-builder": "/automations/new/",
        "campaign": f"/campaigns/{campaign.id}/",
        "outbox": "/campaigns/outbox/",
        "experiments": "/experiments/",
        "report": f"/experiments/{experiment.id}/",
        "report-bayesian": f"/experiments/{experiment.id}/?engine=bayesian",
        "planner": "/experiments/plan/?baseline=2&lift=10",
        "not-found": "/no-such-page/",
    }


def test_every_page_of_the_journey_has_no_serious_or_critical_axe_violation(browser, live_server, marketer):
    segment = seed.shop()
    world = {"segment": segment, "experiment": seed.finished_experiment(), "campaign": seed.fresh_campaign(segment)}
    # The app's CSP forbids inline scripts, axe's among them: this context alone bypasses it.
    context = browser.new_context(viewport={"width": 1440, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    source = open(AXE, encoding="utf-8").read()
    page.goto(f"{live_server.url}/accounts/login/")
    found = {"login": _axe(page, source)}
    login(page, live_server, marketer)
    for name, path in _journey(world).items():
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
        found[name] = _axe(page, source)
    context.close()
    folder = ARTIFACTS / "accessibility"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "axe.json").write_text(json.dumps(found, indent=2))
    blocking = {name: [f"{v['id']} ({v['impact']}): {v['help']} — {v['nodes']}" for v in violations
                       if v["impact"] in BLOCKING] for name, violations in found.items()}
    blocking = {k: v for k, v in blocking.items() if v}
    assert not blocking, json.dumps(blocking, indent=2)


def _axe(page, source: str) -> list[dict]:
    page.add_script_tag(content=source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return result
