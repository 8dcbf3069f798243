"""Campaign fixtures: a segment with members, a draft campaign, the fake provider."""

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services.drafts import campaign_create
from campaigns.services.launch import campaign_launch
from customers.models import AttributeDefinition, Customer
from segments.models import Membership, Segment
from tests.campaigns.fakeprovider import FakeProviderServer

TEXT = "Hi {{ customer.first_name }}, use {{ offer.code }} for {{ offer.discount }}: {{ offer.landing_url }}"
HTML = "<html><body><p>Hi {{ customer.name }}!</p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a></body></html>"


def launched(campaign, **kw) -> Campaign:
    """Launch, and the campaign as the database now holds it."""
    result = campaign_launch(campaign, **kw)
    result.campaign.refresh_from_db()
    return result.campaign


def make_customers(n: int, prefix: str = "c", **fields) -> list[Customer]:
    now = timezone.now()
    Customer.objects.bulk_create([
        Customer(external_id=f"{prefix}{i}", email=f"{prefix}{i}@example.com", name=f"Name {prefix}{i}",
                 created_at=now, updated_at=now, **fields)
        for i in range(n)
    ])
    return list(Customer.objects.filter(external_id__startswith=prefix).order_by("id"))


def make_segment(name: str, customers) -> Segment:
    segment = Segment.objects.create(name=name, current_version=1, size=len(customers))
    Membership.objects.bulk_create([Membership(segment=segment, customer=c, version=1) for c in customers])
    return segment


def spec(name: str = "spring", segment: str = "everyone", **extra) -> dict:
    return {
        "name": name,
        "segment": segment,
        "variants": [
            {"name": "A", "subject": "Hello {{ customer.first_name }}", "text": TEXT, "html": HTML, "weight": 1},
            {"name": "B", "subject": "{{ offer.discount }} off for you", "text": TEXT, "weight": 1},
        ],
        "holdout": 0.1,
        "send_at": None,
        "offer": {"name": f"{name}-offer", "discount": "20%", "code": "SPRING20", "landing_url": "https://shop.example.com/spring"},
    } | extra


@pytest.fixture
def customers(db):
    return make_customers(200)


@pytest.fixture
def segment(customers):
    return make_segment("everyone", customers)


@pytest.fixture
def campaign(segment):
    return campaign_create(spec())


@pytest.fixture
def fake():
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def postmark(settings, fake):
    """Send through anymail's Postmark backend to the fake server."""
    settings.EMAIL_PROVIDER = "postmark"
    settings.EMAIL_BACKEND = settings.ANYMAIL_BACKENDS["postmark"]
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url + "/"}
    settings.CAMPAIGN_SEND_TIMEOUT = 1.0
    settings.CAMPAIGN_RATE_LIMIT = 0
    settings.CAMPAIGN_RATE_REDIS_URL = ""
    return fake


@pytest.fixture
def mailgun(settings, fake):
    settings.EMAIL_PROVIDER = "mailgun"
    settings.EMAIL_BACKEND = settings.ANYMAIL_BACKENDS["mailgun"]
    settings.ANYMAIL = {"MAILGUN_API_KEY": "fake-key", "MAILGUN_SENDER_DOMAIN": "mg.example.com",
                        "MAILGUN_API_URL": fake.url + "/v3"}
    settings.CAMPAIGN_SEND_TIMEOUT = 1.0
    return fake


@pytest.fixture
def tier_attribute(db):
    return AttributeDefinition.objects.create(name="tier", type="text")


@pytest.fixture
def ses(settings, fake):
    """anymail's SES backend (boto3) pointed at the fake server."""
    settings.EMAIL_PROVIDER = "amazon_ses"
    settings.ANYMAIL = {
        "AMAZON_SES_SESSION_PARAMS": {"aws_access_key_id": "fake", "aws_secret_access_key": "fake",
                                      "region_name": "us-east-1"},
        "AMAZON_SES_CLIENT_PARAMS": {"endpoint_url": fake.url},
    }
    settings.CAMPAIGN_SEND_TIMEOUT = 1.0
    settings.CAMPAIGN_RATE_LIMIT = 0
    settings.CAMPAIGN_RATE_REDIS_URL = ""
    return fake
