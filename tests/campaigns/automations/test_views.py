"""campaigns/automations/views.py: the list, an automation's page, the builder and its controls."""

from __future__ import annotations

import pytest
from django.utils import timezone

from campaigns.models import Automation
from campaigns.services.automations.create import automation_create
from core.db import is_postgres
from tests.campaigns.automations import auto_spec, step, us_segment

# Automations claim and cap with PostgreSQL's row and advisory locks; on SQLite their tick says so and skips.
postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations and caps need PostgreSQL")
pytestmark = [pytest.mark.django_db]


def _form(**extra) -> dict:
    """The builder's form as the page posts it: two steps (numbered 0 and 3: a step added and
    one removed in between), the second with two variants."""
    return {"name": "Welcome", "trigger_kind": "event", "trigger_event": "signup",
            "step": ["0", "3"],
            "s0_wait": "0", "s0_unit": "hours", "s0_variant": ["0"],
            "s0v0_name": "a", "s0v0_subject": "Welcome {{ customer.first_name }}", "s0v0_text": "Hi",
            "s3_wait": "2", "s3_unit": "days", "s3_unless": "ordered", "s3_variant": ["0", "2"],
            "s3v0_name": "short", "s3v0_subject": "Still there?", "s3v0_text": "Come back",
            "s3v2_name": "long", "s3v2_subject": "We kept it for you", "s3v2_text": "It is still here", "s3v2_weight": "2",
            "holdout": "10", "exit": ["ordered"], "attribution_days": "7"} | extra


@postgres_only
def test_the_builder_starts_an_automation_with_its_steps(client, marketer):
    client.force_login(marketer)
    response = client.post("/automations/new/", _form())
    automation = Automation.objects.get(name="Welcome")
    assert response.status_code == 302 and response["Location"] == f"/automations/{automation.id}/"
    steps = list(automation.current_version.steps.order_by("index"))
    assert [(s.wait_hours, s.unless) for s in steps] == [(0, ""), (48, "ordered")]
    assert [(v.name, v.weight) for v in steps[1].variants.order_by("position")] == [("short", 1.0), ("long", 2.0)]
    assert automation.trigger_event == "signup" and automation.holdout == pytest.approx(0.1)
    page = client.get(f"/automations/{automation.id}/")
    assert page.status_code == 200
    assert b"Step 2" in page.content and b"48 hours after step 1" in page.content


@postgres_only
def test_the_builder_says_what_is_wrong_with_a_4xx(client, marketer):
    client.force_login(marketer)
    response = client.post("/automations/new/", _form(s0v0_text="{{ broken"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "Step 1, variant a: text: line 1" in page
    assert not Automation.objects.exists()


@postgres_only
def test_an_error_names_the_step_and_variant_and_marks_the_field_keeping_what_was_written(client, marketer):
    client.force_login(marketer)
    response = client.post("/automations/new/", _form(s3v2_subject=""))
    assert response.status_code == 400
    page = response.content.decode()
    # the second step on the page (number 3 in the form), its variant "long", the subject
    assert "Step 2, variant long: subject is required" in page
    assert 'id="s3v2_subject" name="s3v2_subject" value="" aria-invalid="true"' in page
    assert 'id="s3v0_subject" name="s3v0_subject" value="Still there?"' in page and "aria-invalid" not in page.split('id="s3v0_subject"')[1].split(">")[0]
    assert 'value="It is still here"' not in page and ">It is still here</textarea>" in page  # the text is kept
    bad_wait = client.post("/automations/new/", _form(s3_wait="soon")).content.decode()
    assert "Step 2: wait must be a number" in bad_wait and 'id="s3_wait" name="s3_wait" value="soon"' in bad_wait


@postgres_only
def test_the_builder_adds_steps_and_variants_in_place_numbered_after_the_ones_there(client, marketer):
    client.force_login(marketer)
    step = client.get("/automations/new/step/", {"step": ["0", "3"]}, HTTP_HX_REQUEST="true")
    assert step.status_code == 200 and 'id="step-4"' in step.content.decode()
    assert step["HX-Trigger-After-Swap"] == "builder-changed"
    variant = client.get("/automations/new/step/3/variant/", {"s3_variant": ["0", "2"], "s3v0_name": "a", "s3v2_name": "b"})
    html = variant.content.decode()
    assert 'id="s3v3"' in html and 'value="c"' in html and "Remove variant c" in html
    assert client.get("/automations/new/remove/")["HX-Trigger-After-Swap"] == "builder-changed"


@postgres_only
def test_the_rules_read_as_sentences_and_a_variant_previews_for_a_real_customer(client, marketer):
    from customers.models import Customer

    ada = Customer.objects.create(external_id="ada", email="ada@example.com", name="Ada Lovelace",
                                  created_at=timezone.now(), updated_at=timezone.now())
    client.force_login(marketer)
    form = _form(preview_variant="3:2", preview_customer=str(ada.id), reentry_days="30",
                 s3v2_subject="{{ customer.first_name }}, we kept it for you")
    html = client.post("/automations/new/preview/", form, HTTP_HX_REQUEST="true").content.decode()
    assert "Step 2, variant long" in html and "Ada, we kept it for you" in html
    assert "Starts when a customer does “signup”" in html
    assert "Step 2: 2 days after step 1, sends one of “short” or “long”, chosen at random per entry, unless the customer has ordered since entry." in html
    assert "A customer leaves early when they place an order." in html
    assert "may enter again 30 days after" in html and "10% of entries are held out" in html
    broken = client.post("/automations/new/preview/", form | {"s3v2_text": "{% for %}"}).content.decode()
    assert 'role="alert"' in broken and "Step 2, variant long: text:" in broken


@postgres_only
def test_a_viewer_reads_but_cannot_build_or_pause(client, viewer):
    us_segment()
    automation = automation_create(auto_spec(steps=[step(0)]))
    client.force_login(viewer)
    assert client.get("/automations/").status_code == 200
    assert client.get(f"/automations/{automation.id}/").status_code == 200
    assert client.get("/automations/new/").status_code in (302, 403)
    assert client.post(f"/automations/{automation.id}/pause/").status_code in (302, 403)
    assert Automation.objects.get(id=automation.id).state == "active"


@postgres_only
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


@postgres_only
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


@pytest.mark.skipif(is_postgres(), reason="what SQLite shows")
def test_on_sqlite_the_pages_say_automations_need_postgresql_and_still_answer(client, marketer):
    automation = automation_create(auto_spec(trigger={"event": "browse"}, steps=[step(0)]))
    client.force_login(marketer)
    for url in ("/automations/", "/automations/new/", f"/automations/{automation.id}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Automations need PostgreSQL." in response.content.decode(), url
    assert "No report on SQLite" in client.get(f"/automations/{automation.id}/").content.decode()
