"""campaigns/webhooks.py: provider events through anymail, stored once, forward only, for a
campaign's ledger row and an automation's step send alike."""

import base64
import json
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from campaigns.automations.selectors import automation_status
from campaigns.models import AutomationSend, LedgerEntry, TrackingEvent
from campaigns.sending import campaign_send
from campaigns.services.automations.create import automation_create
from campaigns.services.launch import campaign_launch
from core.db import is_postgres
from customers.models import Customer, Suppression
from segments.services import membership
from tests.campaigns.automations import auto_spec, make_people, run_all, step, us_segment

pytestmark = pytest.mark.django_db
S = LedgerEntry.Status
URL = "/webhooks/postmark/tracking/"
AUTH = "Basic " + base64.b64encode(b"hook:s3cret").decode()


@pytest.fixture(autouse=True)
def webhook_secret(settings, monkeypatch):
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}


@pytest.fixture
def sent_row(campaign):
    campaign_launch(campaign)
    campaign_send(campaign.id)
    return LedgerEntry.objects.filter(campaign=campaign, status=S.SENT).first()


def delivery(row, when=None, **extra):
    return {
        "RecordType": "Delivery", "ServerID": 1, "MessageID": row.provider_message_id, "Recipient": row.email,
        "Tag": "", "DeliveredAt": (when or timezone.now()).isoformat(), "Details": "ok",
        "Metadata": {"offerlab_id": row.key},
    } | extra


def bounce(row, kind="HardBounce", event_id=42):
    return {
        "RecordType": "Bounce", "ID": event_id, "Type": kind, "TypeCode": 1, "MessageID": row.provider_message_id,
        "Email": row.email, "BouncedAt": timezone.now().isoformat(), "Description": "no such user",
        "Details": "550 5.1.1", "Metadata": {"offerlab_id": row.key},
    }


def post(client, body, auth=AUTH):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    with override_settings(EMAIL_PROVIDER="postmark"):  # its webhook is the only one that answers
        return client.post(URL, data=json.dumps(body), content_type="application/json", **headers)


def test_a_delivery_moves_the_row_forward(client, sent_row):
    assert post(client, delivery(sent_row)).status_code == 200
    sent_row.refresh_from_db()
    assert sent_row.status == S.DELIVERED
    assert TrackingEvent.objects.get().ledger_id == sent_row.id


def test_a_webhook_without_the_secret_is_refused(client, sent_row):
    assert post(client, delivery(sent_row), auth=None).status_code == 401
    assert post(client, delivery(sent_row), auth="Basic " + base64.b64encode(b"hook:wrong").decode()).status_code == 401
    assert not TrackingEvent.objects.exists()


def test_webhooks_are_closed_while_no_secret_is_configured(client, sent_row, settings):
    settings.ANYMAIL = {}
    assert post(client, delivery(sent_row)).status_code == 403


def test_a_replayed_event_is_stored_once(client, sent_row):
    body = delivery(sent_row)
    post(client, body)
    post(client, body)
    assert TrackingEvent.objects.count() == 1


def test_a_stale_event_is_ignored(client, sent_row):
    post(client, delivery(sent_row, when=timezone.now() - timedelta(days=30)))
    sent_row.refresh_from_db()
    assert sent_row.status == S.SENT and not TrackingEvent.objects.exists()


def test_the_status_never_moves_backwards(client, sent_row):
    LedgerEntry.objects.filter(id=sent_row.id).update(status=S.CLICKED)
    post(client, delivery(sent_row))
    sent_row.refresh_from_db()
    assert sent_row.status == S.CLICKED


def test_a_delivery_settles_an_unknown_row(client, sent_row):
    LedgerEntry.objects.filter(id=sent_row.id).update(status=S.UNKNOWN)
    post(client, delivery(sent_row))
    sent_row.refresh_from_db()
    assert sent_row.status == S.DELIVERED


def test_a_hard_bounce_suppresses_the_customer(client, sent_row):
    post(client, bounce(sent_row))
    sent_row.refresh_from_db()
    assert sent_row.status == S.BOUNCED
    assert Suppression.objects.filter(customer_id=sent_row.customer_id, reason="bounced").exists()


def test_a_soft_bounce_suppresses_nobody(client, sent_row):
    post(client, bounce(sent_row, kind="SoftBounce", event_id=43))
    assert not Suppression.objects.exists()


def test_a_complaint_suppresses_the_customer(client, sent_row):
    body = {
        "RecordType": "SpamComplaint", "ID": 77, "Type": "SpamComplaint", "TypeCode": 512,
        "MessageID": sent_row.provider_message_id, "Email": sent_row.email,
        "BouncedAt": timezone.now().isoformat(), "Metadata": {"offerlab_id": sent_row.key},
    }
    post(client, body)
    assert Suppression.objects.filter(customer_id=sent_row.customer_id, reason="complained").exists()


ANYMAIL_TRACKING = [
    "amazon_ses", "brevo", "mailersend", "mailgun", "mailjet", "mailtrap", "postal", "postmark", "resend",
    "sendgrid", "sendinblue", "sparkpost", "unisender_go", "mandrill",
]


@pytest.mark.parametrize("provider", ANYMAIL_TRACKING)
def test_only_the_configured_providers_webhook_answers_and_never_with_a_500(client, settings, provider):
    settings.EMAIL_PROVIDER = "postmark"
    anonymous = client.post(f"/webhooks/{provider}/tracking/", data="{}", content_type="application/json")
    assert anonymous.status_code == (401 if provider == "postmark" else 404)
    settings.EMAIL_PROVIDER = provider
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret", "MAILGUN_WEBHOOK_SIGNING_KEY": "k",
                        "POSTAL_WEBHOOK_KEY": "k", "UNISENDER_GO_API_KEY": "k", "MANDRILL_WEBHOOK_KEY": "k",
                        "MAILERSEND_SIGNING_SECRET": "k", "RESEND_SIGNING_SECRET": "whsec_a2V5"}
    assert client.post(f"/webhooks/{provider}/tracking/", data="{}", content_type="application/json").status_code in (401, 403)
    if provider == "resend":
        return  # its signature check needs the svix package, not installed: a deployment would add it
    empty = client.post(f"/webhooks/{provider}/tracking/", data="{}", content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    assert empty.status_code < 500, (provider, empty.status_code)  # no events (200) or not this shape (400)
    for body in ("{not json", "[1, 2"):
        response = client.post(f"/webhooks/{provider}/tracking/", data=body, content_type="application/json",
                               HTTP_AUTHORIZATION=AUTH)
        assert 400 <= response.status_code < 500, (provider, body, response.status_code)


def test_no_inbound_mail_route_is_mounted(client, settings):
    settings.EMAIL_PROVIDER = "postmark"
    assert client.post("/webhooks/postmark/inbound/", data="{}", content_type="application/json").status_code == 404


def test_malformed_json_with_the_secret_is_a_400(client, settings):
    settings.EMAIL_PROVIDER = "postmark"
    response = client.post(URL, data="{not json", content_type="application/json", HTTP_AUTHORIZATION=AUTH)
    assert response.status_code == 400


# ---------------------------------------------------------------- automations' messages
# An automation's step send is moved forward, and its customer suppressed, exactly as a
# campaign's ledger row is: the same events through the same signed webhooks.

postgres_only = pytest.mark.skipif(not is_postgres(), reason="automations need PostgreSQL")
A = AutomationSend.Status


@pytest.fixture
def auto_rows():
    """Three customers who entered an automation and were sent its first step (no holdout)."""
    ids = make_people(3, prefix="hook")
    segment = us_segment()
    automation = automation_create(auto_spec(name="Hooked", holdout=0, steps=[step(0), step(48, subject="Later")]))
    Customer.objects.filter(id__in=ids).update(country="US")
    membership.segment_refresh(segment)
    run_all()
    rows = list(AutomationSend.objects.filter(automation=automation, status=A.SENT).order_by("id"))
    assert len(rows) == 3 and all(r.provider_message_id for r in rows)
    return rows


def auto_event(row, record_type: str, **extra) -> dict:
    body = {
        "RecordType": record_type, "MessageID": row.provider_message_id, "Recipient": row.email,
        "Metadata": {"offerlab_id": row.key, "offerlab_automation": str(row.automation_id)},
    }
    stamp = timezone.now().isoformat()
    body |= {"Delivery": {"DeliveredAt": stamp}, "Open": {"ReceivedAt": stamp, "FirstOpen": True},
             "Click": {"ReceivedAt": stamp, "OriginalLink": "https://shop.example/x"}}[record_type]
    return body | extra


@postgres_only
@pytest.mark.parametrize("record_type, status", [("Delivery", A.DELIVERED), ("Open", A.OPENED), ("Click", A.CLICKED)])
def test_an_event_for_an_automations_message_moves_its_send_forward(client, auto_rows, record_type, status):
    row = auto_rows[0]
    assert post(client, auto_event(row, record_type)).status_code == 200
    row.refresh_from_db()
    assert row.status == status
    stored = TrackingEvent.objects.get()
    assert stored.automation_send_id == row.id and stored.ledger_id is None
    # the other sends are untouched, and the automation's status counts what the webhook said
    assert {r.status for r in AutomationSend.objects.exclude(id=row.id).filter(step_index=0)} == {A.SENT}
    first = automation_status(row.automation)["steps"][0]
    assert first["sent"] == 3
    assert (first["delivered"], first["opened"], first["clicked"]) == {
        A.DELIVERED: (1, 0, 0), A.OPENED: (1, 1, 0), A.CLICKED: (1, 1, 1)}[status]


@postgres_only
def test_an_automations_send_never_moves_backwards(client, auto_rows):
    row = auto_rows[0]
    post(client, auto_event(row, "Click"))
    post(client, auto_event(row, "Delivery"))
    row.refresh_from_db()
    assert row.status == A.CLICKED


@postgres_only
def test_a_hard_bounce_on_an_automations_message_suppresses_the_customer_and_their_next_step(client, auto_rows):
    row = auto_rows[0]
    post(client, bounce(row) | {"Metadata": {"offerlab_id": row.key, "offerlab_automation": str(row.automation_id)}})
    row.refresh_from_db()
    assert row.status == A.BOUNCED and row.error.startswith("bounced")
    assert Suppression.objects.filter(customer_id=row.customer_id, reason="bounced").exists()
    # two days on, the second step goes to the other two only: the bounced address gets nothing more
    AutomationSend.objects.filter(step_index=1).update(due_at=timezone.now())
    run_all()
    second = {s.customer_id: s.status for s in AutomationSend.objects.filter(step_index=1)}
    assert second[row.customer_id] == A.SUPPRESSED
    assert sorted(second.values()) == sorted([A.SUPPRESSED, A.SENT, A.SENT])


@postgres_only
def test_a_complaint_on_an_automations_message_suppresses_the_customer(client, auto_rows):
    row = auto_rows[1]
    body = {
        "RecordType": "SpamComplaint", "ID": 78, "Type": "SpamComplaint", "TypeCode": 512,
        "MessageID": row.provider_message_id, "Email": row.email, "BouncedAt": timezone.now().isoformat(),
        "Metadata": {"offerlab_id": row.key, "offerlab_automation": str(row.automation_id)},
    }
    post(client, body)
    row.refresh_from_db()
    assert row.status == A.COMPLAINED
    assert Suppression.objects.filter(customer_id=row.customer_id, reason="complained").exists()


MAILGUN_KEY = "mailgun-signing-key"


def mailgun_post(client, settings, event_data: dict, *, key: str = MAILGUN_KEY):
    """A Mailgun tracking webhook as Mailgun signs it: HMAC-SHA256 of timestamp + token."""
    import hashlib
    import hmac as hmac_
    import secrets

    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret", "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    stamp, token = str(int(timezone.now().timestamp())), secrets.token_hex(16)
    signature = hmac_.new(key.encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": stamp, "token": token, "signature": signature},
            "event-data": {"timestamp": float(stamp)} | event_data}
    with override_settings(EMAIL_PROVIDER="mailgun"):
        return client.post("/webhooks/mailgun/tracking/", data=json.dumps(body), content_type="application/json",
                           HTTP_AUTHORIZATION=AUTH)


@postgres_only
def test_a_signed_mailgun_delivery_finds_the_automations_send_by_its_key(client, settings, auto_rows):
    row = auto_rows[2]
    data = {"event": "delivered", "id": "ev-1", "recipient": row.email,
            "message": {"headers": {"message-id": "ignored@mg.example"}},
            "user-variables": {"offerlab_id": row.key, "offerlab_automation": str(row.automation_id)}}
    assert mailgun_post(client, settings, data, key="not-the-key").status_code == 400  # a forged signature
    row.refresh_from_db()
    assert row.status == A.SENT and not TrackingEvent.objects.exists()
    assert mailgun_post(client, settings, data).status_code == 200
    row.refresh_from_db()
    assert row.status == A.DELIVERED


@postgres_only
def test_a_signed_mailgun_bounce_without_metadata_finds_the_send_by_message_id_and_address(client, settings, auto_rows):
    # Mailgun gives one message id to a batch: the two rows share it, the address tells them apart.
    first, second = auto_rows[0], auto_rows[1]
    AutomationSend.objects.filter(id__in=[first.id, second.id]).update(provider_message_id="<batch-9@mg.example>")
    data = {"event": "failed", "severity": "permanent", "id": "ev-2", "recipient": second.email,
            "reason": "bounce", "delivery-status": {"code": 550, "message": "no such user", "description": ""},
            "message": {"headers": {"message-id": "batch-9@mg.example"}}}
    assert mailgun_post(client, settings, data).status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (A.SENT, A.BOUNCED)
    assert list(Suppression.objects.values_list("customer_id", flat=True)) == [second.customer_id]
    assert TrackingEvent.objects.get().automation_send_id == second.id
