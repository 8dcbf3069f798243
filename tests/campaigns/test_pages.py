"""The marketer's campaign pages: the form, the estimate, progress, previews, the outbox."""

import pytest

from campaigns.sending import campaign_send
from campaigns.services.launch import campaign_launch as services_launch
from campaigns.models import Campaign, OutboxMessage

pytestmark = pytest.mark.django_db


def form(segment, **extra):
    data = {
        "name": "autumn", "segment": str(segment.id), "holdout": "10", "attribution_days": "7",
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
    assert response.status_code == 200
    assert "was not saved" in response.content.decode()
    assert not Campaign.objects.exists()


def test_the_estimate_states_the_detectable_lift(client, viewer, segment):
    client.force_login(viewer)
    html = client.get("/campaigns/estimate/", {"segment": segment.id, "holdout": "10"}).content.decode()
    assert "200</strong> customers" in html and "held out" in html


def test_launch_on_the_outbox_provider_sends_and_shows_progress(client, marketer, campaign, settings):
    settings.EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
    client.force_login(marketer)
    client.post(f"/campaigns/{campaign.id}/launch/")
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


def test_a_customer_page_shows_segments_messages_and_suppression(client, viewer, campaign, customers, settings):
    from customers.services.suppression import customer_suppress

    settings.EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
    services_launch(campaign)
    campaign_send(campaign.id)
    customer = customers[0]
    customer_suppress(customer, "unsubscribed", detail="one-click link")
    client.force_login(viewer)
    html = client.get(f"/customers/{customer.id}/").content.decode()
    assert "everyone" in html  # its segment
    assert campaign.name in html  # the message it received (or was held out of)
    assert "suppressed: Unsubscribed" in html
