"""campaigns/automations/views.py: the list, an automation's page, the builder and its controls."""

from __future__ import annotations

import pytest

from campaigns.models import Automation
from campaigns.services.automations.create import automation_create
from core.db import is_postgres
from tests.campaigns.automations import auto_spec, step, us_segment

# Automations claim and cap with PostgreSQL's row and advisory locks; on SQLite their tick says so and skips.
postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations and caps need PostgreSQL")
pytestmark = [postgres_only, pytest.mark.django_db]


def _form(**extra) -> dict:
    return {"name": "Welcome", "trigger_kind": "event", "trigger_event": "signup", "s0_wait": "0",
            "s0_unit": "hours", "s0_subject": "Welcome {{ customer.first_name }}", "s0_text": "Hi",
            "s1_wait": "2", "s1_unit": "days", "s1_unless": "ordered", "s1_subject": "Still there?", "s1_text": "Come back",
            "holdout": "10", "exit": ["ordered"], "attribution_days": "7"} | extra


def test_the_builder_starts_an_automation_with_its_steps(client, marketer):
    client.force_login(marketer)
    response = client.post("/automations/new/", _form())
    automation = Automation.objects.get(name="Welcome")
    assert response.status_code == 302 and response["Location"] == f"/automations/{automation.id}/"
    steps = list(automation.current_version.steps.order_by("index"))
    assert [(s.wait_hours, s.unless) for s in steps] == [(0, ""), (48, "ordered")]
    assert automation.trigger_event == "signup" and automation.holdout == pytest.approx(0.1)
    page = client.get(f"/automations/{automation.id}/")
    assert page.status_code == 200
    assert b"Step 2" in page.content and b"48 hours after step 1" in page.content


def test_the_builder_says_what_is_wrong_with_a_4xx(client, marketer):
    client.force_login(marketer)
    response = client.post("/automations/new/", _form(s0_text="{{ broken", s1_subject=""))
    assert response.status_code == 400
    assert b"steps[0]" in response.content
    assert not Automation.objects.exists()


def test_a_viewer_reads_but_cannot_build_or_pause(client, viewer):
    us_segment()
    automation = automation_create(auto_spec(steps=[step(0)]))
    client.force_login(viewer)
    assert client.get("/automations/").status_code == 200
    assert client.get(f"/automations/{automation.id}/").status_code == 200
    assert client.get("/automations/new/").status_code in (302, 403)
    assert client.post(f"/automations/{automation.id}/pause/").status_code in (302, 403)
    assert Automation.objects.get(id=automation.id).state == "active"


def test_pause_and_archive_from_the_page(client, marketer):
    us_segment()
    automation = automation_create(auto_spec(steps=[step(0)]))
    client.force_login(marketer)
    client.post(f"/automations/{automation.id}/pause/")
    assert Automation.objects.get(id=automation.id).state == "paused"
    client.post(f"/automations/{automation.id}/archive/")
    assert Automation.objects.get(id=automation.id).state == "archived"
    listing = client.get("/automations/", HTTP_HX_REQUEST="true")
    assert listing.status_code == 200 and b"automation-rows" in listing.content and b"Archived" in listing.content


def test_the_page_reports_revenue_and_orders_and_a_steps_variants(client, marketer):
    from campaigns.models import AutomationSend
    from customers.models import Customer
    from segments.services import membership
    from tests.campaigns.automations import TEXT, make_people, run_all

    ids = make_people(40, prefix="pv")
    segment = us_segment()
    two = {"wait_hours": 0, "variants": [{"name": n, "subject": f"Offer {n}", "text": TEXT} for n in ("short", "long")]}
    automation = automation_create(auto_spec(name="Two ways", holdout=0.2, steps=[two]))
    Customer.objects.filter(id__in=ids).update(country="US")
    membership.segment_refresh(segment)
    run_all()
    assert AutomationSend.objects.filter(automation=automation).exists()
    client.force_login(marketer)
    page = client.get(f"/automations/{automation.id}/").content.decode()
    assert "Revenue per entry" in page and "Orders per entry" in page
    assert "Step 1: its variants" in page and "vs the other variants of the step" in page
    assert "<th scope=\"row\">short</th>" in page and "<th scope=\"row\">long</th>" in page
