"""campaigns/views.py: the marketer's campaign pages (the form, the estimate, progress,
previews, the outbox) and the public one-click unsubscribe page under /u/ (RFC 8058)."""

import pytest

from campaigns.models import Campaign, LedgerEntry, OutboxMessage
from campaigns.sending import campaign_send
from campaigns.services.launch import campaign_launch
from campaigns.services.launch_request import campaign_launch_run
from campaigns.unsubscribe import unsubscribe_token, unsubscribe_url
from customers.models import Suppression

pytestmark = pytest.mark.django_db


def form(segment, **extra):
    data = {
        "name": "autumn", "segment": str(segment.id), "holdout": "10", "attribution_days": "7",
        "variant": ["0", "1"], "v0_layout": "", "v1_layout": "",
        "v0_name": "A", "v0_subject": "Hi {{ customer.name }}", "v0_text": "Hello {{ customer.name }}",
        "v0_html": "<p>Hello {{ customer.name }}</p>", "v0_weight": "1",
        "v1_name": "B", "v1_subject": "A treat for you", "v1_text": "Hi", "v1_weight": "1",
    }
    return data | extra


def test_a_marketer_creates_a_draft_with_two_variants_and_a_holdout(client, marketer, segment):
    client.force_login(marketer)
    response = client.post("/campaigns/new/", form(segment))
    campaign = Campaign.objects.get(name="autumn")
    assert response.url == f"/campaigns/{campaign.id}/"
    assert campaign.holdout == pytest.approx(0.1)
    assert [v.name for v in campaign.variants.order_by("position")] == ["A", "B"]


def test_a_bad_template_keeps_the_form_and_says_why(client, marketer, segment):
    client.force_login(marketer)
    response = client.post("/campaigns/new/", form(segment, v0_subject="Hi {{ customer.name "))
    assert response.status_code == 400
    assert "was not saved" in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_estimate_states_the_detectable_lift(client, viewer, segment):
    client.force_login(viewer)
    html = client.get("/campaigns/estimate/", {"segment": segment.id, "holdout": "10"}).content.decode()
    assert "200</strong> customers" in html and "held out" in html


def test_for_a_large_segment_the_estimate_is_read_from_a_sample_and_says_so(client, viewer, segment, customers,
                                                                          monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns import selectors
    from customers.models import Customer, Order
    from segments import selectors as segment_selectors
    from tests.campaigns.conftest import make_customers

    make_customers(200, prefix="out")  # not in the segment: the sample sees members and others
    Customer.objects.filter(pk__in=[c.pk for c in customers[:50]]).update(email="")
    for c in customers[50:100]:
        Order.objects.create(external_id=f"o{c.pk}", customer=c, amount=10, ordered_at=timezone.now() - timedelta(days=2))
    monkeypatch.setattr(selectors, "ESTIMATE_EXACT_MAX", 100)  # the 200 members count as large here
    monkeypatch.setattr(segment_selectors, "PREVIEW_BLOCK", 20)
    monkeypatch.setattr(segment_selectors, "PREVIEW_SAMPLE", 400)  # every block: the sample is the whole base
    client.force_login(viewer)
    html = client.get("/campaigns/estimate/", {"segment": segment.id, "holdout": "10"}).content.decode()
    # 150 of the 200 members have an email, 50 of those ordered in the last 7 days: 33.33%.
    assert "about 150</strong> customers with an email" in html and "estimated from the 200 members" in html
    assert "over a baseline of 33.33% conversion" in html


def test_launch_on_the_outbox_provider_sends_and_shows_progress(client, marketer, campaign, settings):
    settings.EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
    client.force_login(marketer)
    client.post(f"/campaigns/{campaign.id}/launch/", {"confirm": "yes"})
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.LAUNCHING
    campaign_launch_run(campaign.id)  # what the worker's launch task does
    campaign.refresh_from_db()
    assert campaign.state in (Campaign.State.SENDING, Campaign.State.COMPLETED)
    campaign_send(campaign.id)  # what the worker's task does; no worker in this test
    html = client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert 'role="progressbar"' in html and "held out" in html
    assert OutboxMessage.objects.exists()
    message = OutboxMessage.objects.first()
    assert message.subject in client.get("/campaigns/outbox/").content.decode()
    assert 'sandbox=""' in client.get(f"/campaigns/outbox/{message.id}/").content.decode()


def test_preview_renders_a_variant_for_a_customer(client, viewer, campaign, customers):
    client.force_login(viewer)
    html = client.get(f"/campaigns/{campaign.id}/preview/", {"variant": "B", "customer": customers[0].id}).content.decode()
    assert "20% off for you" in html


def test_a_viewer_sees_no_launch_button_and_is_refused_when_posting(client, viewer, campaign):
    client.force_login(viewer)
    assert "Launch</button>" not in client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert client.post(f"/campaigns/{campaign.id}/launch/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


# --------------------------------------------------------------------------- unsubscribe


@pytest.fixture
def rows(campaign):
    campaign_launch(campaign)
    return list(LedgerEntry.objects.filter(campaign=campaign).order_by("id")[:2])


def path(row):
    return f"/u/{unsubscribe_token(row.key)}/"


def test_the_url_is_built_from_site_url_and_is_opaque(rows, settings):
    url = unsubscribe_url(rows[0].key)
    assert url.startswith(settings.SITE_URL + "/u/")
    # What it carries is the row's random key and its signature: nothing about the customer
    # (comparing digits of the customer id with random hex was a coin toss).
    assert rows[0].email not in url and url.split("/u/")[1].split(".")[0] == rows[0].key


def test_get_shows_a_confirmation_and_unsubscribes_nobody(client, rows):
    response = client.get(path(rows[0]))
    assert response.status_code == 200 and b"<form method=\"post\"" in response.content
    assert not Suppression.objects.exists()


def test_a_one_click_post_unsubscribes_without_login_or_redirect(rows):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post(path(rows[0]), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert Suppression.objects.filter(customer_id=rows[0].customer_id, reason="unsubscribed").count() == 1


def test_a_token_unsubscribes_only_its_own_customer(client, rows):
    client.post(path(rows[0]))
    assert not Suppression.objects.filter(customer_id=rows[1].customer_id).exists()


def test_a_tampered_token_is_refused(client, rows):
    token = unsubscribe_token(rows[0].key)
    forged = rows[1].key + token[len(rows[0].key):]
    assert client.post(f"/u/{forged}/").status_code == 404
    assert client.post("/u/not-a-token/").status_code == 404
    assert not Suppression.objects.exists()


def test_unsubscribing_twice_changes_nothing(client, rows):
    client.post(path(rows[0]))
    client.post(path(rows[0]))
    assert Suppression.objects.count() == 1


def test_a_viewer_previewing_a_runaway_template_gets_an_error_within_the_budget(client, viewer, campaign, customers, settings):
    import time

    settings.TEMPLATE_RENDER_SECONDS = 0.5
    # Saved before the budget existed: straight into the table.
    campaign.variants.filter(name="A").update(text="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
    client.force_login(viewer)
    started = time.monotonic()
    response = client.get(f"/campaigns/{campaign.id}/preview/", {"variant": "A", "customer": customers[0].id})
    assert time.monotonic() - started < 3
    assert response.status_code == 200 and "over the render budget" in response.content.decode()
    detail = client.get(f"/campaigns/{campaign.id}/")
    assert detail.status_code == 200 and "over the render budget" in detail.content.decode()


def test_the_form_refuses_a_template_over_the_render_budget(client, marketer, segment, settings):
    settings.TEMPLATE_RENDER_SECONDS = 0.5
    client.force_login(marketer)
    response = client.post("/campaigns/new/", form(segment, v1_text="{{ 'a' * 300000000 }}"))
    assert "variant &#x27;B&#x27;, text: over the render budget" in response.content.decode()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize("holdout", ["inf", "nan", "-5", "100", "150", "abc"])
def test_the_estimate_refuses_a_holdout_outside_0_to_100_percent(client, viewer, segment, holdout):
    client.force_login(viewer)
    response = client.get("/campaigns/estimate/", {"segment": segment.id, "holdout": holdout})
    assert response.status_code == 400


def test_the_estimate_refuses_a_window_too_long_to_compute(client, viewer, segment):
    client.force_login(viewer)
    assert client.get("/campaigns/estimate/", {"segment": segment.id, "attribution_days": "10000000"}).status_code == 400


def test_a_viewer_reads_outbox_messages_without_their_unsubscribe_tokens(client, viewer, marketer, campaign, settings):
    settings.EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
    campaign_launch(campaign)
    campaign_send(campaign.id)
    message = OutboxMessage.objects.filter(html__contains="/u/").first()
    row = LedgerEntry.objects.get(key=message.metadata["offerlab_id"])
    token = unsubscribe_token(row.key)
    assert token in message.html and token in message.headers["List-Unsubscribe"]
    client.force_login(viewer)
    seen = client.get(f"/campaigns/outbox/{message.id}/").content.decode()
    assert token not in seen and "/u/[hidden]/" in seen and message.subject in seen
    client.force_login(marketer)
    assert token in client.get(f"/campaigns/outbox/{message.id}/").content.decode()


# --------------------------------------------------------------------------- composer, confirm, launch


def test_a_bare_launch_post_goes_to_the_confirm_step_and_launches_nothing(client, marketer, campaign):
    client.force_login(marketer)
    response = client.post(f"/campaigns/{campaign.id}/launch/")
    assert response.status_code == 302 and response.url == f"/campaigns/{campaign.id}/confirm/"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DRAFT


def test_the_confirm_step_states_audience_holdout_send_time_provider_and_a_sample(client, marketer, campaign):
    client.force_login(marketer)
    html = client.get(f"/campaigns/{campaign.id}/confirm/").content.decode()
    assert "200 customers" in html and "about 20<small>" in html and "about 180<small>" in html
    assert "As soon as launched" in html and "outbox" in html
    assert 'id="confirm-mde"' in html
    assert "Hello Name" in html  # variant A's subject, rendered for the first audience member
    assert "Launch to 200 customers" in html and 'name="confirm" value="yes"' in html


def test_for_a_large_audience_the_confirm_step_waits_for_the_worker_then_shows_the_facts(
        client, marketer, campaign, monkeypatch, django_capture_on_commit_callbacks):
    from campaigns.services import launch_check
    from core.models import Job

    monkeypatch.setattr(launch_check, "CHECK_INLINE_MAX", 100)  # the 200 members count as large
    client.force_login(marketer)
    with django_capture_on_commit_callbacks():
        html = client.get(f"/campaigns/{campaign.id}/confirm/").content.decode()
    job = Job.objects.get(kind="launch_check")
    assert 'id="confirm-counting"' in html and 'data-job-state="queued"' in html
    assert f'hx-get="/campaigns/{campaign.id}/confirm/"' in html and "Launch to" not in html
    launch_check.launch_check_run(campaign.id)  # the worker's part
    Job.objects.filter(pk=job.pk).update(state=Job.State.DONE)
    fragment = client.get(f"/campaigns/{campaign.id}/confirm/", HTTP_HX_REQUEST="true").content.decode()
    assert "<h1>" not in fragment and 'id="confirm-body"' in fragment and "hx-get" not in fragment.split(">")[0]
    assert "Launch to 200 customers" in fragment and "about 20<small>" in fragment and "Hello Name" in fragment


def test_saving_a_draft_to_a_large_audience_queues_its_check(client, marketer, segment, monkeypatch,
                                                            django_capture_on_commit_callbacks):
    from campaigns.services import launch_check
    from core.models import Job

    monkeypatch.setattr(launch_check, "CHECK_INLINE_MAX", 100)
    client.force_login(marketer)
    with django_capture_on_commit_callbacks():
        response = client.post("/campaigns/new/", form(segment))
    campaign = Campaign.objects.get(name="autumn")
    assert response.status_code == 302
    assert Job.objects.filter(kind="launch_check", args=[campaign.id], state="queued").count() == 1
    detail = client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert 'id="draft-checking"' in detail


def test_the_confirm_step_refuses_an_offer_code_that_no_offer_fills(client, marketer, segment):
    from campaigns.services.drafts import campaign_create

    campaign = campaign_create({"name": "nocode", "segment": "everyone",
                                "variants": [{"name": "A", "subject": "Hi", "text": "Code {{ offer.code }}"}]})
    client.force_login(marketer)
    html = client.get(f"/campaigns/{campaign.id}/confirm/").content.decode()
    assert "cannot launch" in html and "{{ offer.code }}, which is empty for every recipient" in html
    assert "Launch to" not in html


def test_a_draft_says_not_launched_instead_of_a_percentage(client, viewer, campaign):
    client.force_login(viewer)
    html = client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert "Not launched yet" in html and "% of 0" not in html and 'role="progressbar"' not in html


def test_the_list_and_the_page_print_the_same_counts(client, marketer, campaign, settings):
    settings.EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
    campaign_launch(campaign)
    campaign_send(campaign.id)
    client.force_login(marketer)
    held = LedgerEntry.objects.filter(campaign=campaign, status="held_out").count()
    line = f"{200 - held:,} sent · {held:,} held out"
    assert line in client.get("/campaigns/").content.decode()
    assert line in client.get(f"/campaigns/{campaign.id}/").content.decode()


def composer_post(segment, customer, **extra):
    data = {"name": "fresh", "segment": str(segment.id), "holdout": "10", "attribution_days": "7",
            "offer_name": "Spring", "offer_discount": "20% off", "offer_code": "SPRING20",
            "offer_url": "https://shop.example.com/spring",
            "variant": ["0", "3"], "preview_variant": "3", "preview_customer": str(customer.id),
            "v0_name": "A", "v0_subject": "Hi", "v0_layout": "letter", "v0_body": "Plain letter", "v0_button": "Go",
            "v3_name": "B", "v3_subject": "{{ customer.first_name }}, spring", "v3_layout": "spotlight",
            "v3_headline": "Hello {{ customer.first_name }}", "v3_body": "It is spring.", "v3_button": "Shop now",
            "v3_brand": "Acme"}
    return data | extra


def test_the_live_preview_renders_the_unsaved_variant_for_the_chosen_customer(client, marketer, segment, customers):
    client.force_login(marketer)
    html = client.post("/campaigns/compose/preview/", composer_post(segment, customers[5])).content.decode()
    assert "Name, spring" in html and "Hello Name" in html and "SPRING20" in html and "Acme" in html
    assert not Campaign.objects.exists()


def test_the_live_preview_names_a_template_problem(client, marketer, segment, customers):
    client.force_login(marketer)
    html = client.post("/campaigns/compose/preview/",
                       composer_post(segment, customers[0], v3_headline="{{ customer.shoe }}")).content.decode()
    assert 'role="alert"' in html and "customer.shoe is not a customer field" in html


def test_a_composed_draft_is_saved_then_edited_in_place(client, marketer, segment, customers):
    client.force_login(marketer)
    response = client.post("/campaigns/new/", composer_post(segment, customers[0]))
    campaign = Campaign.objects.get(name="fresh")
    assert response.url == f"/campaigns/{campaign.id}/"
    assert [v.layout for v in campaign.variants.order_by("position")] == ["letter", "spotlight"]
    page = client.get(f"/campaigns/{campaign.id}/edit/").content.decode()
    assert "It is spring." in page and 'value="Acme"' in page
    edit = composer_post(segment, customers[0], variant=["0"], v0_body="Changed letter", offer_code="SPRING25")
    assert client.post(f"/campaigns/{campaign.id}/edit/", edit).status_code == 302
    campaign.refresh_from_db()
    assert [v.name for v in campaign.variants.all()] == ["A"] and "Changed letter" in campaign.variants.get().html
    assert campaign.offer.code == "SPRING25"


def test_a_launched_campaign_is_not_edited(client, marketer, campaign, segment, customers):
    campaign_launch(campaign)
    client.force_login(marketer)
    response = client.post(f"/campaigns/{campaign.id}/edit/", composer_post(segment, customers[0], name="spring"))
    assert response.status_code == 302
    assert [v.name for v in Campaign.objects.get(id=campaign.id).variants.all()] == ["A", "B"]


def test_an_added_variant_block_is_numbered_after_the_last_one(client, marketer):
    client.force_login(marketer)
    html = client.get("/campaigns/compose/variant/", {"variant": ["0", "4"]}).content.decode()
    assert 'name="variant" value="5"' in html and 'id="v5_subject"' in html and "Variant <span class=\"variant-name\">C" in html


def test_a_test_send_reaches_the_outbox_marked_test_and_writes_no_ledger_row(client, marketer, campaign, customers, settings):
    settings.EMAIL_PROVIDER = "outbox"
    client.force_login(marketer)
    response = client.post(f"/campaigns/{campaign.id}/test/",
                           {"variant": "A", "customer": customers[3].id, "address": "me@example.com"})
    assert response.status_code == 302
    message = OutboxMessage.objects.get()
    assert message.to == ["me@example.com"] and message.subject == "[Test] Hello Name"
    assert not LedgerEntry.objects.exists()


def test_a_test_send_to_a_bad_address_says_so(client, marketer, campaign, customers):
    client.force_login(marketer)
    response = client.post(f"/campaigns/{campaign.id}/test/",
                           {"variant": "A", "customer": customers[3].id, "address": "me@x\r\nBcc: y@z"}, follow=True)
    assert "Test send failed: address" in response.content.decode() and not OutboxMessage.objects.exists()


def test_the_campaign_page_shows_its_launch_job_and_a_failed_launch_offers_a_retry(client, marketer, segment):
    from campaigns.errors import CampaignError
    from campaigns.services.drafts import campaign_create

    campaign = campaign_create({"name": "nocode", "segment": "everyone",
                                "variants": [{"name": "A", "subject": "Hi", "text": "Code {{ offer.code }}"}]})
    client.force_login(marketer)
    client.post(f"/campaigns/{campaign.id}/launch/", {"confirm": "yes"})
    html = client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert "Launch of nocode" in html and "queued" in html and ">Launching<" in html
    with pytest.raises(CampaignError):
        campaign_launch_run(campaign.id)  # the worker's task, which raises: its job fails (signals do it in a worker)
    html = client.get(f"/campaigns/{campaign.id}/").content.decode()
    assert ">Failed<" in html and "Nothing was sent" in html and "then Retry launch" in html
    # (The job's own failure text is written by the worker's signal handlers: the browser test shows it.)


def test_removing_a_variant_or_changing_the_segment_tells_the_live_preview_to_render_again(client, marketer, segment):
    client.force_login(marketer)
    assert client.get("/campaigns/compose/remove/").headers["HX-Trigger"] == "variant-removed"
    response = client.get("/campaigns/compose/customers/", {"segment": segment.id})
    assert response.headers["HX-Trigger"] == "customers-loaded" and "c0@example.com" not in response.content.decode()
    assert "(c0)" in response.content.decode()
