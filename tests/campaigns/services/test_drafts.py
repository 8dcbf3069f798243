"""campaigns/services/drafts.py: a draft from the spec, refused with the reason; previews."""

import pytest

from campaigns.errors import CampaignError
from campaigns.services.drafts import campaign_create, campaign_preview
from tests.campaigns.conftest import spec

pytestmark = pytest.mark.django_db


def test_a_template_error_is_refused_when_the_campaign_is_created(segment):
    body = spec()
    body["variants"][0]["html"] = "{% if %}"
    with pytest.raises(CampaignError, match="variant 'A', html: line 1"):
        campaign_create(body)


def test_a_send_time_without_a_time_zone_is_refused(segment):
    with pytest.raises(CampaignError, match="needs a time zone"):
        campaign_create(spec(send_at="2030-01-01T09:00:00"))


def test_preview_renders_a_variant_for_a_customer(campaign, customers):
    message = campaign_preview(campaign, "A", customers[0])
    assert message.subject == "Hello Name" and "SPRING20" in message.text


def test_a_recurrence_that_cannot_run_is_refused_naming_its_field(segment):
    with pytest.raises(CampaignError, match=r"recurrence: crontab\.hour: '25' cannot run"):
        campaign_create(spec(recurrence="0 25 * * 1"))


def test_a_recurrence_is_a_crontab_of_five_fields(segment):
    with pytest.raises(CampaignError, match="five crontab fields"):
        campaign_create(spec(recurrence="every monday"))


LOOP = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x"


@pytest.fixture
def fast_budget(settings):
    settings.TEMPLATE_RENDER_SECONDS = 0.5


def test_a_template_over_the_render_budget_is_refused_at_save_naming_variant_and_field(segment, fast_budget):
    body = spec()
    body["variants"][1]["text"] = LOOP
    with pytest.raises(CampaignError, match=r"variant 'B', text: over the render budget: took longer than 0.5 s"):
        campaign_create(body)
    body["variants"][1]["text"] = '{{ "a" * 300000000 }}'
    with pytest.raises(CampaignError, match=r"variant 'B', text: over the render budget"):
        campaign_create(body)


def test_a_loop_hidden_from_the_sample_customer_saves_but_its_preview_stops_in_time(segment, customers, fast_budget):
    body = spec()
    body["variants"][0]["text"] = "{% if customer.id > " + str(customers[0].id) + " %}" + LOOP + "{% endif %}"
    campaign = campaign_create(body)
    with pytest.raises(CampaignError, match="over the render budget"):
        campaign_preview(campaign, "A", customers[5])


@pytest.mark.parametrize("value", ["offers@example.com\r\nBcc: all@example.com", "a@example.com\nX: y", "not an address"])
def test_a_from_email_with_a_line_break_or_no_address_is_refused_naming_the_field(segment, value):
    with pytest.raises(CampaignError, match="from_email: "):
        campaign_create(spec(from_email=value))


def test_a_from_email_with_a_display_name_is_kept(segment):
    assert campaign_create(spec(from_email="Shop <offers@example.com>")).from_email == "Shop <offers@example.com>"


def test_a_from_email_stored_with_a_line_break_is_never_used(campaign):
    from campaigns.models import Campaign
    from campaigns.services.launch import campaign_check

    Campaign.objects.filter(id=campaign.id).update(from_email="a@example.com\r\nBcc: b@example.com")
    campaign.refresh_from_db()
    assert any(p.startswith("from_email: line breaks") for p in campaign_check(campaign))
    with pytest.raises(Exception, match="line breaks"):
        campaign.full_clean()


@pytest.mark.parametrize("change, field", [
    (lambda s: s | {"name": "n" * 201}, "name: at most 200"),
    (lambda s: s | {"offer": s["offer"] | {"discount": "d" * 101}}, "offer.discount: at most 100"),
    (lambda s: s | {"offer": s["offer"] | {"name": "o" * 201}}, "offer.name: at most 200"),
    (lambda s: s | {"variants": [s["variants"][0] | {"subject": "s" * 999}]}, "variant 'A': subject: at most 998"),
    (lambda s: s | {"variants": [s["variants"][0] | {"name": "v" * 101}]}, "name: at most 100"),
    (lambda s: s | {"attribution_days": 10**10}, "attribution_days"),
    (lambda s: s | {"frequency_cap": 10**10}, "frequency_cap"),
    (lambda s: s | {"holdout": "nan"}, "holdout"),
])
def test_values_too_long_or_too_large_are_refused_naming_the_field(segment, change, field):
    with pytest.raises(CampaignError, match=field.replace("'", ".")):
        campaign_create(change(spec()))
