"""Every page of the app as a marketer clicks through it, at a desktop (1440 px) and a phone
(390 px) width, on a demo base with models, an uplift model, campaigns (draft and sent), an
automation and outbox messages. Screenshots go to test-artifacts/tour-all-<width>/, or to
$TOUR_SCREENS/<width>/ when set: they are for a person to look at, page by page. The test
itself fails on what a person should never see: a server error, Django's bare pages, a page
that scrolls sideways on a phone, "None" or "nan" printed as a value."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from campaigns.sending import campaign_send
from campaigns.services.automations.create import automation_create
from campaigns.services.drafts import campaign_create
from customers.models import Customer
from customers.services.demo import demo_load
from experiments.services.demo import experiment_from_demo
from experiments.services.uplift import uplift_model_train
from segments.models import Segment
from segments.services import training
from segments.services.membership import segment_refresh
from tests.browser import seed
from tests.browser.conftest import ARTIFACTS, login
from tests.browser.test_screens import OVERFLOWING, WIDTHS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(1200)]

# Text a person should never read on a page (as a whole word, outside form fields), and
# Django's own date spelling ("Nov. 10, 2024"): the one format is "10 Nov 2024".
NEVER = re.compile(r"\b(None|nan|NaN|Traceback|undefined|True|False)\b"
                   r"|\b(?:Jan|Feb|March|April|May|June|July|Aug|Sept|Oct|Nov|Dec)\.? \d{1,2}, \d{4}")


def _base():
    demo_load(600, seed=5)
    experiment = experiment_from_demo()
    shop = seed.shop()
    finished = seed.finished_experiment()
    sent = seed.fresh_campaign(shop)
    campaign_send(sent.id)
    rfm = training.model_train("rfm")
    for segment in Segment.objects.filter(model=rfm):
        segment_refresh(segment)  # twice: the migration page has a step to show
    uplift = uplift_model_train(experiment, "treatment", "campaign_conversion", learner="logistic", folds=3)
    big = Segment.objects.filter(model=rfm).order_by("-size").first()
    draft = campaign_create({
        "name": "Autumn draft", "segment": big.name, "holdout": 0.1,
        "offer": {"name": "AUT15", "discount": "15% off", "code": "AUT15", "landing_url": "https://shop.example.com/a"},
        "variants": [{"name": "A", "subject": "{{ customer.first_name }}, 15% off", "layout": "spotlight",
                      "content": {"headline": "Autumn is here", "body": "15% off everything.", "button": "Shop"}}],
    })
    automation = automation_create({"name": "Welcome series", "trigger": {"segment": shop.name}, "holdout": 0.1,
                                    "reentry_days": None, "exit": ["ordered"],
                                    "steps": [{"wait_hours": 0, "variants": [{"name": "a", "subject": "Welcome",
                                                                              "text": "Hello {{ customer.first_name }}"}]}]})
    customer = Customer.objects.filter(external_id__startswith="demo-").order_by("id").first()
    return {
        "dashboard": "/",
        "customers": "/customers/",
        "customer": f"/customers/{customer.id}/",
        "imports": "/customers/imports/",
        "segments": "/segments/",
        "segment-new": "/segments/new/",
        "segment": f"/segments/{shop.id}/",
        "segment-edit": f"/segments/{shop.id}/edit/",
        "segment-model-made": f"/segments/{big.id}/",
        "migration": "/segments/migration/",
        "models": "/segments/models/",
        "model": f"/segments/models/{rfm.id}/",
        "campaigns": "/campaigns/",
        "composer": "/campaigns/new/",
        "campaign-sent": f"/campaigns/{sent.id}/",
        "campaign-draft": f"/campaigns/{draft.id}/",
        "campaign-edit": f"/campaigns/{draft.id}/edit/",
        "confirm": f"/campaigns/{draft.id}/confirm/",
        "automations": "/automations/",
        "automation-new": "/automations/new/",
        "automation": f"/automations/{automation.id}/",
        "outbox": "/campaigns/outbox/",
        "experiments": "/experiments/",
        "report-finished": f"/experiments/{finished.id}/",
        "report-too-early": f"/experiments/{sent.experiment_id}/",
        "report-demo": f"/experiments/{experiment.id}/",
        "uplift": f"/experiments/uplift/{uplift.id}/",
        "planner": "/experiments/plan/?baseline=2&lift=10",
        "not-found": "/no-such-page/",
    }


def test_every_page_at_each_width(browser, live_server, marketer):
    pages = _base()
    root = Path(os.environ["TOUR_SCREENS"]) if os.environ.get("TOUR_SCREENS") else ARTIFACTS / "tour-all"
    problems: dict[str, list[str]] = {}
    for width, (w, h) in WIDTHS.items():
        context = browser.new_context(viewport={"width": w, "height": h})
        page = context.new_page()
        page.set_default_timeout(30_000)
        folder = root / width
        folder.mkdir(parents=True, exist_ok=True)
        login(page, live_server, marketer)
        for n, (name, path) in enumerate(pages.items(), start=1):
            response = page.goto(live_server.url + path)
            expect(page.locator("body")).to_be_visible()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(folder / f"{n:02d}-{name}.png"), full_page=True)
            found = []
            if response.status >= 500 or (response.status == 404 and name != "not-found"):
                found.append(f"HTTP {response.status}")
            if not page.locator("nav").count():
                found.append("no navigation")
            text = page.evaluate("() => document.querySelector('main, body').innerText")
            found += sorted({m.group(0) for m in NEVER.finditer(text)})
            found += page.evaluate(OVERFLOWING) if width == "phone" else []
            if found:
                problems[f"{width}:{name}"] = found
        context.close()
    assert not problems, problems
