"""campaigns/validation.py: printed values that come out blank (issue 10, what was seen 3)."""

import pytest

from campaigns.messages import variant_compiled
from campaigns.selectors import campaign_audience
from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_check
from campaigns.validation import template_empties
from customers.models import AttributeDefinition, Customer
from tests.campaigns.conftest import make_customers, make_segment

pytestmark = pytest.mark.django_db


def draft(segment, text, *, offer=None, name="c"):
    body = {"name": name, "segment": segment.name, "holdout": 0.1,
            "variants": [{"name": "A", "subject": "Hello", "text": text}]}
    if offer:
        body["offer"] = offer
    return campaign_create(body)


def empties(campaign):
    compiled = {v.name: variant_compiled(v) for v in campaign.variants.all()}
    return template_empties(campaign, compiled, campaign_audience(campaign))


def test_an_offer_code_with_no_offer_attached_is_an_error_at_launch(segment):
    campaign = draft(segment, "Code {{ offer.code }}")
    problems = campaign_check(campaign)
    assert len(problems) == 1
    assert "{{ offer.code }}, which is empty for every recipient (the campaign has no offer)" in problems[0]


def test_an_offer_without_a_code_is_named_in_the_error(segment):
    campaign = draft(segment, "Code {{ offer.code }}", offer={"name": "nocode", "discount": "10%"})
    assert "offer 'nocode' has no code" in campaign_check(campaign)[0]


def test_a_guarded_or_defaulted_empty_value_is_no_problem(segment):
    campaign = draft(segment, "{% if offer.code %}Code {{ offer.code }}{% endif %} {{ offer.name | default('') }}")
    assert campaign_check(campaign) == [] and empties(campaign) == ([], [])


def test_a_name_blank_for_some_recipients_is_a_warning_with_the_count(db):
    make_customers(2, prefix="blank")
    Customer.objects.filter(external_id__startswith="blank").update(name="  ")
    people = make_customers(8, prefix="n") + list(Customer.objects.filter(external_id__startswith="blank"))
    segment = make_segment("mixed", people)
    campaign = draft(segment, "Hi {{ customer.first_name }}")
    errors, warnings = empties(campaign)
    assert errors == [] and len(warnings) == 1
    assert "empty for 2 of 10 recipients (20.0%, e.g. customer blank0)" in warnings[0]
    assert campaign_check(campaign) == []  # a warning does not stop the launch


def test_a_name_blank_for_every_recipient_is_an_error(db):
    make_customers(3, prefix="z")
    Customer.objects.update(name="")
    segment = make_segment("nameless", list(Customer.objects.all()))
    campaign = draft(segment, "Hi {{ customer.name }}")
    assert "empty for every one of the 3 recipients" in campaign_check(campaign)[0]


def test_an_attribute_present_but_blank_for_some_is_a_warning(db):
    AttributeDefinition.objects.create(name="tier", type="text")
    people = make_customers(3, prefix="t", attributes={"tier": "gold"}) + make_customers(1, prefix="u", attributes={"tier": ""})
    segment = make_segment("tiers", people)
    campaign = draft(segment, "Your tier: {{ customer.attributes.tier }}")
    errors, warnings = empties(campaign)
    assert errors == [] and "{{ customer.attributes.tier }}, which is empty for 1 of 4" in warnings[0]
