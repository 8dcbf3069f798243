"""Test send: one variant, rendered for one real customer, sent to an address the marketer
types (their own inbox), through the configured provider. No ledger row, no experiment."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from campaigns.errors import CampaignError
from campaigns.models import Campaign
from campaigns.providers.base import SENT, OutgoingMessage
from campaigns.providers.registry import provider_for
from customers.models import Customer

from .drafts import campaign_preview

TEST_PREFIX = "[Test] "


def campaign_test_send(campaign: Campaign, variant_name: str, address: str, customer: Customer) -> str:
    """Send the variant as `customer` would get it to `address`; the provider's message id.
    One provider call in the request: it does not grow with the audience."""
    address = (address or "").strip()
    if any(ch in address for ch in "\r\n\x00"):
        raise CampaignError("address: line breaks are not allowed")
    try:
        validate_email(address)
    except ValidationError:
        raise CampaignError(f"address: {address!r} is not an email address") from None
    rendered = campaign_preview(campaign, variant_name, customer)
    key = "test" + secrets.token_hex(12)
    message = OutgoingMessage(
        key=key, to=address, from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        subject=(TEST_PREFIX + rendered.subject)[:998], text=rendered.text, html=rendered.html,
        metadata={"offerlab_id": key, "offerlab_test": "1", "offerlab_campaign": str(campaign.id)},
        tag=f"campaign-{campaign.id}-test",
    )
    provider = provider_for()
    try:
        result = provider.send([message])[0]
    finally:
        provider.close()
    if result.outcome != SENT:
        raise CampaignError(f"the provider did not take the test message ({result.outcome}): {result.error}")
    return result.provider_message_id
