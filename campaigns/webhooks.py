"""Provider tracking webhooks, through anymail's views and its `tracking` signal.

anymail authenticates every request (HTTP basic auth with ANYMAIL WEBHOOK_SECRET, and the
provider's signature where it signs, e.g. MAILGUN_WEBHOOK_SIGNING_KEY) and normalizes the
event. Here each event is stored once (a replay or duplicate finds its twin by the
provider's event id), events too old are refused, the send row (a campaign's ledger row or
an automation's step send) only ever moves forward, and hard bounces, complaints and
provider unsubscribes suppress the customer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from functools import wraps

from anymail.exceptions import AnymailError

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.utils import timezone

from customers.models import Customer, Suppression
from customers.services.suppression import customer_suppress

from .models import AutomationSend, LedgerEntry, TrackingEvent

logger = logging.getLogger(__name__)
S = LedgerEntry.Status

# How far along a row is: a webhook moves it up this list, never down.
RANK = {
    S.PENDING: 0, S.SENDING: 1, S.UNKNOWN: 2, S.SENT: 3, S.DELIVERED: 4, S.OPENED: 5, S.CLICKED: 6,
    S.FAILED: 7, S.BOUNCED: 8, S.COMPLAINED: 9,
}
STATUS_FOR_EVENT = {
    "queued": S.SENT, "sent": S.SENT, "delivered": S.DELIVERED, "opened": S.OPENED, "clicked": S.CLICKED,
    "rejected": S.FAILED, "failed": S.FAILED, "bounced": S.BOUNCED, "complained": S.COMPLAINED,
}
SUPPRESS_FOR_EVENT = {
    "bounced": Suppression.Reason.BOUNCED,
    "complained": Suppression.Reason.COMPLAINED,
    "unsubscribed": Suppression.Reason.UNSUBSCRIBED,
}


def _event_id(provider: str, event) -> str:
    if event.event_id:
        return str(event.event_id)[:255]
    # No id from the provider (Postmark deliveries, opens...): the payload itself is the
    # identity, so a replay of the same body is the same event.
    try:
        raw = json.dumps(event.esp_event, sort_keys=True, default=str)
    except (TypeError, ValueError):
        raw = repr(event.esp_event)
    basis = f"{event.event_type}|{event.message_id}|{event.recipient}|{event.timestamp}|{raw}"
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()


def _ledger_for(event) -> LedgerEntry | AutomationSend | None:
    """The send row the event is about: a campaign's ledger row or an automation's step send.
    Our key rides in the message's metadata; without it, the provider's message id."""
    metadata = event.metadata or {}
    key = metadata.get("offerlab_id")
    if key:
        # An automation's message says so (offerlab_automation): look there first.
        models = (AutomationSend, LedgerEntry) if metadata.get("offerlab_automation") else (LedgerEntry, AutomationSend)
        for model in models:
            row = model.objects.filter(key=str(key)).first()
            if row:
                return row
    if event.message_id:
        for model in (LedgerEntry, AutomationSend):
            rows = model.objects.filter(provider_message_id=str(event.message_id))
            if event.recipient:
                # Mailgun gives one id to a whole batch: the address tells the rows apart.
                rows = rows.filter(email__iexact=event.recipient)
            row = rows.first()
            if row:
                return row
    return None


# Postmark's bounce types that mean the address is gone for good; anymail calls every
# Postmark bounce "bounced", soft ones included (Mailgun and SES soft ones are "deferred").
POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "SpamComplaint", "Blocked"}


def _event_type(provider: str, event) -> str:
    if provider == "postmark" and event.event_type == "bounced":
        kind = (event.esp_event or {}).get("Type", "") if isinstance(event.esp_event, dict) else ""
        if kind and kind not in POSTMARK_HARD:
            return "deferred"
    return event.event_type


def tracking_event_record(provider: str, event, *, now=None) -> TrackingEvent | None:
    """Store one normalized anymail event and apply it. None: stale or already seen."""
    now = now or timezone.now()
    if event.timestamp is not None:
        age = (now - event.timestamp).total_seconds()
        if age > settings.CAMPAIGN_WEBHOOK_MAX_AGE_SECONDS or age < -3600:
            logger.warning("ignoring a %s %s event stamped %s: stale or from the future", provider, event.event_type, event.timestamp)
            return None
    row = _ledger_for(event)
    try:
        with transaction.atomic():
            stored = TrackingEvent.objects.create(
                provider=provider, event_id=_event_id(provider, event), event_type=event.event_type,
                ledger=row if isinstance(row, LedgerEntry) else None,
                automation_send=row if isinstance(row, AutomationSend) else None, recipient=(event.recipient or "")[:254], message_id=str(event.message_id or "")[:255],
                occurred_at=event.timestamp, description=(event.description or event.mta_response or "")[:2000],
                payload=_jsonable(event.esp_event),
            )
    except IntegrityError:
        return None  # a duplicate or a replay: already applied once
    event_type = _event_type(provider, event)
    target = STATUS_FOR_EVENT.get(event_type)
    if row is not None and target is not None:
        lower = [status for status, rank in RANK.items() if rank < RANK[target]]
        changes = {"status": target, "updated_at": now, "lease_until": None}
        if target in (S.FAILED, S.BOUNCED, S.COMPLAINED):
            changes["error"] = f"{event_type}: {event.description or event.mta_response or event.reject_reason or ''}"[:2000]
        if target == S.SENT or RANK[target] >= RANK[S.SENT]:
            changes["sent_at"] = row.sent_at or event.timestamp or now
        if event.message_id and not row.provider_message_id:
            changes["provider_message_id"] = str(event.message_id)[:255]
        # The same forward-only move for an automation's send as for a campaign's row: the two
        # ledgers share these status names (an automation's skipped or cancelled send has no
        # rank, so no event revives it, as a campaign's cancelled row).
        type(row).objects.filter(id=row.id, status__in=lower).update(**changes)
    reason = SUPPRESS_FOR_EVENT.get(event_type)
    if reason:
        customers = [row.customer] if row is not None else []
        if not customers and event.recipient:
            customers = list(Customer.objects.filter(email__iexact=event.recipient))
        for customer in customers:
            customer_suppress(customer, reason, detail=(event.description or event.reject_reason or "")[:500], source=provider)
    return stored


def _jsonable(value):
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return {"repr": repr(value)[:5000]}


def on_tracking(sender, event, esp_name: str, **kwargs) -> None:
    tracking_event_record(esp_name.lower().replace(" ", "_"), event)


def _basic_auth(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def webhook_guard(view, provider: str):
    """Around anymail's tracking view of `provider`: only the provider EMAIL_PROVIDER names
    answers (the others are 404), closed (403) while no WEBHOOK_SECRET is set, 401 without
    the secret, and a body anymail cannot read is a 400, not a 500 with a traceback."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if settings.EMAIL_PROVIDER != provider:
            raise Http404("no such webhook")
        secrets = (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET")
        if not secrets:
            return HttpResponseForbidden("webhooks are disabled until ANYMAIL_WEBHOOK_SECRET is set")
        secrets = [secrets] if isinstance(secrets, str) else list(secrets)
        given = _basic_auth(request)
        if given is None or not any(hmac.compare_digest(given, secret) for secret in secrets):
            response = HttpResponse("the webhook secret is missing or wrong", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Basic realm="offerlab webhooks"'
            return response
        try:
            return view(request, *args, **kwargs)
        except (AnymailError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            # Not the shape this provider sends (malformed JSON, a missing field): the
            # sender's mistake. A database error still answers 5xx, so the provider retries.
            logger.warning("refused a malformed %s webhook: %s: %s", provider, type(exc).__name__, exc)
            return HttpResponseBadRequest(f"malformed {provider} webhook payload", content_type="text/plain")

    return wrapped
