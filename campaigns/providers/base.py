"""Email providers behind one small interface: send a batch, answer per message, look up.

Every provider goes through django-anymail (its settings, payload builders, sessions and
errors); what differs is how many messages one HTTP call carries:
- ``outbox`` (default): stores messages (campaigns.outbox), sends nothing.
- ``postmark``: POST /email/batch with up to 500 fully rendered messages, each built by
  anymail's Postmark payload, each answered on its own.
- ``mailgun``: one call for up to 1,000 recipients, each recipient's rendered subject and
  bodies carried in Mailgun's recipient-variables (anymail's merge_data/merge_headers).
- anything else anymail supports (``amazon_ses``, ``resend``, ...): one call per message.

The outcome of each message is one of: sent (with the provider's id), failed (permanent,
with the reason), retry (nothing went out: 429, 503, connection refused; maybe with the
provider's Retry-After) or unknown (the request may have gone out: a timeout, a 500 after
the body was sent). Unknown is never resent blindly: ``lookup`` asks the provider for the
messages of a batch by the batch id carried in each message's metadata.
"""

from __future__ import annotations

import email.utils
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone

import requests
from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings
from django.core.mail import get_connection

logger = logging.getLogger(__name__)

SENT, FAILED, RETRY, UNKNOWN = "sent", "failed", "retry", "unknown"


@dataclass
class OutgoingMessage:
    key: str  # our id: LedgerEntry.key
    to: str
    from_email: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    tag: str = ""


@dataclass
class SendResult:
    key: str
    outcome: str
    provider_message_id: str = ""
    error: str = ""
    retry_after: float | None = None


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt_timezone.utc)
    return max(0.0, (when - datetime.now(dt_timezone.utc)).total_seconds())


def _connection_refused(exc: BaseException) -> bool:
    """True when the request certainly never reached the provider."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        from urllib3.exceptions import NewConnectionError

        first = exc.args[0] if exc.args else None
        if isinstance(first, NewConnectionError) or isinstance(getattr(first, "reason", None), NewConnectionError):
            return True
    from urllib3.exceptions import NewConnectionError

    return isinstance(exc, (NewConnectionError, ConnectionRefusedError))


def classify_http(status: int, body: str, retry_after: str | None) -> tuple[str, str, float | None]:
    """(outcome, reason, retry_after) for an HTTP answer that was not a success."""
    reason = f"HTTP {status}: {body[:300]}".strip()
    if status == 429:
        return RETRY, reason, retry_after_seconds(retry_after)
    if status == 503:
        return RETRY, reason, retry_after_seconds(retry_after)
    if status in (401, 403, 408):
        # Bad credentials or a timeout before processing: nothing was sent, and failing
        # every row for a configuration mistake would lose the campaign. Retry, capped.
        return RETRY, reason, retry_after_seconds(retry_after)
    if status >= 500:
        return UNKNOWN, reason, None  # it may have been accepted before the error
    return FAILED, reason, None


def classify_exception(exc: BaseException) -> tuple[str, str, float | None]:
    """(outcome, reason, retry_after) for an exception raised while sending."""
    # anymail wraps requests' errors (its class also inherits the original type) and
    # boto's: look along the whole chain of causes, most certain answers first.
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in chain:
        response = getattr(cause, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return classify_http(response.status_code, response.text, response.headers.get("Retry-After"))
    for cause in chain:
        if _connection_refused(cause):
            return RETRY, f"connection failed: {_first_line(cause)}", None
    for cause in chain:
        decided = _classify_botocore(cause)
        if decided:
            return decided
    for cause in chain:
        if isinstance(cause, requests.Timeout):
            return UNKNOWN, f"timed out waiting for the provider: {_first_line(cause)}", None
    return UNKNOWN, f"the request may have been sent: {type(exc).__name__}: {_first_line(exc)}", None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _classify_botocore(exc: BaseException) -> tuple[str, str, float | None] | None:
    try:
        from botocore import exceptions as bexc
    except ImportError:  # pragma: no cover - boto3 is in requirements
        return None
    if isinstance(exc, (bexc.EndpointConnectionError, bexc.ConnectTimeoutError)):
        return RETRY, f"connection failed: {exc}", None
    if isinstance(exc, (bexc.ReadTimeoutError, bexc.ConnectionClosedError)):
        return UNKNOWN, f"timed out waiting for the provider: {exc}", None
    if isinstance(exc, bexc.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        if code in ("Throttling", "ThrottlingException", "TooManyRequestsException") or status in (429, 503):
            return RETRY, f"{code}: {exc}", None
        if status >= 500:
            return UNKNOWN, f"{code}: {exc}", None
        return FAILED, f"{code}: {exc}", None
    return None


class Provider:
    """One provider account. Subclasses set `name`, `max_batch` and implement `send`."""

    name = "provider"
    max_batch = 1

    def __init__(self, timeout: float | None = None):
        self.timeout = timeout if timeout is not None else settings.CAMPAIGN_SEND_TIMEOUT

    @property
    def account_key(self) -> str:
        """Identifies the account for the shared rate limit (never the secret itself)."""
        return self.name

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        raise NotImplementedError

    def lookup(self, batch: str) -> dict[str, str] | None:
        """{our key: provider message id} for what the provider holds of a batch; None:
        this provider cannot tell, so unknown rows wait for a webhook instead."""
        return None

    def close(self) -> None:
        pass

    # Shared by the anymail-based providers.
    def _anymail_message(self, message: OutgoingMessage):
        from anymail.message import AnymailMessage

        mail = AnymailMessage(
            subject=message.subject,
            body=message.text or " ",
            from_email=message.from_email,
            to=[message.to],
            headers=message.headers,
            metadata=message.metadata,
            tags=[message.tag] if message.tag else [],
        )
        if message.html:
            mail.attach_alternative(message.html, "text/html")
        return mail


def _connection(name: str, **kwargs):
    if name == "outbox":
        return get_connection("campaigns.outbox.OutboxBackend", **kwargs)
    return get_connection(settings.ANYMAIL_BACKENDS[name], **kwargs)


class OutboxProvider(Provider):
    """EMAIL_PROVIDER=outbox: one bulk insert per batch, viewable in the app."""

    name = "outbox"
    max_batch = 1000

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        backend = _connection("outbox")
        mails = [self._anymail_message(m) for m in messages]
        backend.send_messages(mails)
        return [
            SendResult(key=m.key, outcome=SENT, provider_message_id=mail.anymail_status.message_id)
            for m, mail in zip(messages, mails)
        ]

    def lookup(self, batch: str) -> dict[str, str] | None:
        from .models import OutboxMessage

        found = OutboxMessage.objects.filter(metadata__offerlab_batch=batch).values_list("metadata", "message_id")
        return {meta.get("offerlab_id"): message_id for meta, message_id in found}


class AnymailProvider(Provider):
    """Any anymail backend, one API call per message (SES, Resend, Brevo...)."""

    max_batch = 50  # messages per claim; still one call each

    def __init__(self, name: str, timeout: float | None = None):
        super().__init__(timeout)
        self.name = name
        kwargs = {"timeout": self.timeout} if name not in ("amazon_ses",) else {}
        self.backend = _connection(name, **kwargs)

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results = []
        self.backend.open()
        for message in messages:
            mail = self._anymail_message(message)
            try:
                self.backend.send_messages([mail])
            except AnymailRecipientsRefused as exc:
                answer = getattr(getattr(mail, "anymail_status", None), "esp_response", None)
                detail = answer.text[:300] if answer is not None else _first_line(exc)
                results.append(SendResult(message.key, FAILED, error=f"recipient refused: {detail}"))
                continue
            except Exception as exc:
                outcome, reason, after = classify_exception(exc)
                results.append(SendResult(message.key, outcome, error=reason, retry_after=after))
                continue
            status = getattr(mail, "anymail_status", None)
            recipient = None
            if status is not None and status.recipients:
                recipient = next(iter(status.recipients.values()))
            if recipient is None or recipient.status in ("sent", "queued"):
                message_id = (recipient.message_id if recipient else None) or getattr(status, "message_id", "") or ""
                results.append(SendResult(message.key, SENT, provider_message_id=str(message_id)))
            elif recipient.status in ("rejected", "invalid", "failed"):
                results.append(SendResult(message.key, FAILED, error=f"{self.name} {recipient.status} the recipient"))
            else:
                results.append(SendResult(message.key, UNKNOWN, error=f"{self.name} answered {recipient.status}"))
        return results

    def close(self) -> None:
        try:
            self.backend.close()
        except Exception:  # closing a session must never hide a send result
            logger.warning("closing the %s backend failed", self.name, exc_info=True)


class PostmarkProvider(AnymailProvider):
    """Postmark's batch endpoint: up to 500 different messages per call, answered in order."""

    max_batch = 500

    def __init__(self, timeout: float | None = None):
        super().__init__("postmark", timeout)

    @property
    def account_key(self) -> str:
        import hashlib

        token = getattr(self.backend, "server_token", "") or ""
        return f"postmark:{hashlib.sha256(token.encode()).hexdigest()[:12]}"

    def postmark_json(self, message: OutgoingMessage) -> dict:
        data = {"From": message.from_email, "To": message.to, "Subject": message.subject, "TextBody": message.text or " "}
        if message.html:
            data["HtmlBody"] = message.html
        if message.headers:
            data["Headers"] = [{"Name": k, "Value": v} for k, v in message.headers.items()]
        if message.metadata:
            data["Metadata"] = message.metadata
        if message.tag:
            data["Tag"] = message.tag
        if self.backend.message_stream is not None:
            data["MessageStream"] = self.backend.message_stream
        return data

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        self.backend.open()
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Postmark-Server-Token": self.backend.server_token,
        }
        return self.backend.session.request(
            method, self.backend.api_url + path, headers=headers, timeout=self.timeout, **kwargs
        )

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        # Postmark's message JSON, the fields anymail's Postmark payload sets for the same
        # message (a test holds the two equal). Built here because anymail's payload class
        # parses every address with the email package: ~0.5 ms a message, more than the
        # whole batch call costs per message.
        payloads = [self.postmark_json(m) for m in messages]
        try:
            response = self._request("POST", "email/batch", data=json.dumps(payloads))
        except Exception as exc:
            outcome, reason, after = classify_exception(exc)
            return [SendResult(m.key, outcome, error=reason, retry_after=after) for m in messages]
        if response.status_code != 200:
            outcome, reason, after = classify_http(
                response.status_code, response.text, response.headers.get("Retry-After")
            )
            return [SendResult(m.key, outcome, error=reason, retry_after=after) for m in messages]
        try:
            answers = response.json()
            assert isinstance(answers, list) and len(answers) == len(messages)
        except (ValueError, AssertionError):
            # Accepted, but we cannot tell which: reconcile rather than resend.
            reason = f"unreadable batch answer: {response.text[:200]}"
            return [SendResult(m.key, UNKNOWN, error=reason) for m in messages]
        results = []
        for message, answer in zip(messages, answers):
            code = answer.get("ErrorCode", 0)
            if code == 0 and answer.get("MessageID"):
                results.append(SendResult(message.key, SENT, provider_message_id=answer["MessageID"]))
            elif code == 429:
                results.append(SendResult(message.key, RETRY, error=f"Postmark {code}: {answer.get('Message', '')}"))
            else:
                results.append(SendResult(message.key, FAILED, error=f"Postmark {code}: {answer.get('Message', '')}"))
        return results

    def lookup(self, batch: str) -> dict[str, str] | None:
        """Postmark's outbound message search, filtered by our batch id in the metadata."""
        found: dict[str, str] = {}
        offset = 0
        while True:
            response = self._request(
                "GET", "messages/outbound",
                params={"count": 500, "offset": offset, "metadata_offerlab_batch": batch},
            )
            if response.status_code != 200:
                return None
            body = response.json()
            for item in body.get("Messages", []):
                key = (item.get("Metadata") or {}).get("offerlab_id")
                if key:
                    found[key] = item.get("MessageID", "")
            offset += 500
            if offset >= body.get("TotalCount", 0) or offset >= 10_000:
                return found


class MailgunProvider(AnymailProvider):
    """Mailgun: up to 1,000 recipients per call, each with its own rendered content carried
    in recipient-variables (anymail's merge_data / merge_metadata / merge_headers)."""

    max_batch = 1000

    def __init__(self, timeout: float | None = None):
        super().__init__("mailgun", timeout)

    @property
    def account_key(self) -> str:
        return f"mailgun:{getattr(self.backend, 'sender_domain', '')}"

    def _batch_message(self, messages: list[OutgoingMessage]):
        from anymail.message import AnymailMessage

        first = messages[0]
        mail = AnymailMessage(
            subject="%recipient.subject%",
            body="%recipient.text%",
            from_email=first.from_email,
            to=[m.to for m in messages],
            tags=[first.tag] if first.tag else [],
            metadata={"offerlab_batch": first.metadata.get("offerlab_batch", "")},
        )
        if any(m.html for m in messages):
            mail.attach_alternative("%recipient.html%", "text/html")
        mail.merge_data = {m.to: {"subject": m.subject, "text": m.text or " ", "html": m.html} for m in messages}
        mail.merge_metadata = {m.to: {k: v for k, v in m.metadata.items() if k != "offerlab_batch"} for m in messages}
        mail.merge_headers = {m.to: dict(m.headers) for m in messages}
        return mail

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        if len(messages) == 1:
            return super().send(messages)
        # Recipient variables are keyed by address: a repeated address goes in a later call.
        seen: set[str] = set()
        now, later = [], []
        for m in messages:
            (later if m.to.lower() in seen else now).append(m)
            seen.add(m.to.lower())
        results = self._send_group(now)
        if later:
            results += self.send(later)
        return results

    def _send_group(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        mail = self._batch_message(messages)
        self.backend.open()
        try:
            self.backend.send_messages([mail])
        except Exception as exc:
            outcome, reason, after = classify_exception(exc)
            if outcome == FAILED and len(messages) > 1:
                # Mailgun refuses the whole call for one bad address: send one by one so
                # only that recipient fails.
                return AnymailProvider.send(self, messages)
            return [SendResult(m.key, outcome, error=reason, retry_after=after) for m in messages]
        statuses = mail.anymail_status.recipients or {}
        results = []
        for m in messages:
            status = statuses.get(m.to)
            if status is not None and status.status in ("sent", "queued"):
                results.append(SendResult(m.key, SENT, provider_message_id=status.message_id or ""))
            elif status is not None and status.status in ("rejected", "invalid", "failed"):
                results.append(SendResult(m.key, FAILED, error=f"mailgun {status.status} the recipient"))
            else:
                results.append(SendResult(m.key, UNKNOWN, error="no status for this recipient"))
        return results

    def lookup(self, batch: str) -> dict[str, str] | None:
        """Mailgun's events API: accepted events carrying our batch id in user-variables."""
        self.backend.open()
        url = f"{self.backend.api_url}{self.backend.sender_domain}/events"
        params = {"event": "accepted", "user-variables": json.dumps({"offerlab_batch": batch}), "limit": 300}
        found: dict[str, str] = {}
        for _ in range(20):
            response = self.backend.session.get(url, params=params, auth=("api", self.backend.api_key), timeout=self.timeout)
            if response.status_code != 200:
                return None
            body = response.json()
            items = body.get("items", [])
            for item in items:
                variables = item.get("user-variables") or {}
                if variables.get("offerlab_id"):
                    found[variables["offerlab_id"]] = (item.get("message") or {}).get("headers", {}).get("message-id", "")
            next_url = (body.get("paging") or {}).get("next")
            if not items or not next_url:
                break
            url, params = next_url, None
        return found


def provider_for(name: str | None = None) -> Provider:
    """The provider configured by EMAIL_PROVIDER (or the one named)."""
    name = name or settings.EMAIL_PROVIDER
    if name == "outbox":
        return OutboxProvider()
    if name == "postmark" and settings.CAMPAIGN_POSTMARK_BATCH:
        return PostmarkProvider()
    if name == "mailgun" and settings.CAMPAIGN_MAILGUN_BATCH:
        return MailgunProvider()
    return AnymailProvider(name)
