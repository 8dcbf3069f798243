"""What every provider shares: the message, the typed answer per message, the base class.

The outcome of each message is one of: sent (with the provider's id), failed (permanent,
with the reason), retry (nothing went out: 429, 503, connection refused; maybe with the
provider's Retry-After) or unknown (the request may have gone out: a timeout, a 500 after
the body was sent). Unknown is never resent blindly: `lookup` asks the provider for the
messages of a batch by the batch id carried in each message's metadata.

Whether the provider asked us to slow down is a field of the answer (`throttled`), set by
the provider module that understands its own signals (an HTTP 429, a per-message error
code inside a batch answer, an SES `Throttling` code): the sender never reads error text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

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


class TransportError(Exception):
    """A call (or one message of it) that did not go through, typed by what it means.

    permanent: the provider refused it for good (bad address, 4xx): fail the row.
    maybe_sent: it may have gone out (timeout, 5xx after the body was sent): reconcile.
    otherwise nothing went out and it is retried; throttled: because the provider asked us
    to slow down (then everyone slows down, and waits retry_after if given).
    """

    def __init__(self, reason: str, *, permanent: bool = False, maybe_sent: bool = False,
                 throttled: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.permanent, self.maybe_sent = permanent, maybe_sent
        self.throttled, self.retry_after = throttled, retry_after

    @property
    def outcome(self) -> str:
        if self.permanent:
            return FAILED
        return UNKNOWN if self.maybe_sent else RETRY


@dataclass
class SendResult:
    key: str
    outcome: str
    provider_message_id: str = ""
    error: str = ""
    retry_after: float | None = None
    throttled: bool = False  # the provider asked us to slow down

    @classmethod
    def sent(cls, key: str, provider_message_id: str) -> SendResult:
        return cls(key, SENT, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, key: str, error: TransportError) -> SendResult:
        return cls(key, error.outcome, error=error.reason, retry_after=error.retry_after, throttled=error.throttled)


class Provider:
    """One provider account. Subclasses set `name`, `max_batch` and implement `send`."""

    name = "provider"
    max_batch = 1  # messages per provider call (and so the most a claim hands over)

    def __init__(self, timeout: float | None = None):
        self.timeout = timeout if timeout is not None else settings.CAMPAIGN_SEND_TIMEOUT

    batch_setting: str | None = None  # a setting that turns this module off (one call per message)

    @classmethod
    def enabled(cls) -> bool:
        """False: the registry falls back to one anymail call per message."""
        return cls.batch_setting is None or bool(getattr(settings, cls.batch_setting))

    @property
    def account_key(self) -> str:
        """Identifies the account for the shared rate limit (never the secret itself)."""
        return self.name

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        """One result per message, in order."""
        raise NotImplementedError

    def error_from(self, exc: BaseException) -> TransportError:
        """What an exception raised while sending means (a provider with its own client
        library, like SES's boto3, reads that library's errors first)."""
        from .errors import error_from_exception

        return error_from_exception(exc)

    def all_failed(self, messages: list[OutgoingMessage], error: TransportError) -> list[SendResult]:
        return [SendResult.failed(m.key, error) for m in messages]

    def lookup(self, batch: str) -> dict[str, str] | None:
        """{our key: provider message id} for what the provider holds of a batch; None:
        this provider cannot tell, so unknown rows wait for a webhook instead."""
        return None

    def close(self) -> None:
        pass


def anymail_message(message: OutgoingMessage):
    """The message as anymail takes it."""
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


def anymail_connection(name: str, **kwargs):
    """The Django email backend for a provider name (EMAIL_PROVIDER's values)."""
    return get_connection(settings.ANYMAIL_BACKENDS[name], **kwargs)
