"""web/views.py: the dashboard and the customer page, reading every app."""

import pytest

from campaigns.models import Campaign
from campaigns.sending import campaign_send
from campaigns.services.launch import campaign_launch
from customers.services.suppression import customer_suppress
from segments.models import SegmentRefresh

pytestmark = pytest.mark.django_db


def test_a_customer_page_shows_segments_messages_and_suppression(client, viewer, campaign, customers, settings):
    settings.EMAIL_BACKEND = "campaigns.outbox.OutboxBackend"
    campaign_launch(campaign)
    campaign_send(campaign.id)
    customer = customers[0]
    customer_suppress(customer, "unsubscribed", detail="one-click link")
    client.force_login(viewer)
    html = client.get(f"/customers/{customer.id}/").content.decode()
    assert "everyone" in html  # its segment
    assert campaign.name in html  # the message it received (or was held out of)
    assert "suppressed: Unsubscribed" in html


def test_an_unknown_customer_is_a_404(client, viewer):
    client.force_login(viewer)
    assert client.get("/customers/999999/").status_code == 404


def test_the_dashboard_shows_a_sending_campaigns_progress_and_segment_trends(client, viewer, campaign, segment):
    campaign_launch(campaign)
    for version, size in ((1, 150), (2, 200)):
        SegmentRefresh.objects.create(segment=segment, version=version, size=size, entered=size, left=0)
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert Campaign.objects.get(id=campaign.id).state == Campaign.State.SENDING
    assert campaign.name in html and 'role="progressbar"' in html
    assert "everyone" in html and "<svg" in html  # the segment with its size sparkline


def test_a_missing_page_is_a_404_inside_the_layout_with_the_navigation(client, viewer, settings):
    settings.DEBUG = False
    client.force_login(viewer)
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert 'aria-label="Main"' in html and "This page does not exist" in html and 'rel="icon"' in html


def test_a_server_error_is_a_500_inside_the_layout_with_the_navigation(client, viewer, settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.web.boom_urls"
    client.raise_request_exception = False
    client.force_login(viewer)
    response = client.get("/boom/")
    html = response.content.decode()
    assert response.status_code == 500
    assert 'aria-label="Main"' in html and "Something went wrong on our side" in html


def test_the_favicon_is_served_and_linked(client, viewer):
    client.force_login(viewer)
    assert client.get("/favicon.ico").status_code == 301
    assert 'href="/static/favicon.svg"' in client.get("/").content.decode()


def test_every_nav_link_marks_the_current_section(client, viewer):
    client.force_login(viewer)
    html = client.get("/experiments/").content.decode()
    assert html.count('aria-current="page"') == 1
    assert '<a href="/experiments/" aria-current="page">Experiments</a>' in html


def test_a_small_customer_base_is_counted_exactly_on_the_dashboard(client, viewer, customers):
    from web.selectors import customer_total

    assert customer_total() == (len(customers), True)
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert f'<span class="big">{len(customers):,}</span>' in html and "about" not in html.split("Customers</span>")[1][:80]


def test_the_dashboard_says_an_unchanged_size_in_words_and_lists_no_empty_segment_as_largest(
    client, viewer, segment, customers
):
    from segments.models import Segment

    Segment.objects.create(name="nobody yet", current_version=1, size=0)
    segment.size = 200
    segment.save(update_fields=["size"])
    for version in (1, 2):
        SegmentRefresh.objects.create(segment=segment, version=version, size=200, entered=0, left=0)
    client.force_login(viewer)
    html = client.get("/").content.decode()
    assert "unchanged at 200 over 2 refreshes" in html and "<polyline" not in html
    assert "nobody yet" not in html
