"""Any anymail backend, one API call per message (Resend, Brevo, SparkPost...).

The fallback for every provider without a module of its own, and the path the batch
providers take for a single message or to isolate one refused address.
"""

from __future__ import annotations

import logging

from anymail.exceptions import AnymailRecipientsRefused

from .base import (
    FAILED, UNKNOWN, OutgoingMessage, Provider, SendResult, TransportError, anymail_connection, anymail_message,
)
from .errors import first_line

logger = logging.getLogger(__name__)


class AnymailProvider(Provider):
    max_batch = 50  # messages per claim; still one call each

    def __init__(self, name: str | None = None, timeout: float | None = None):
        super().__init__(timeout)
        self.name = name or self.name
        self.backend = anymail_connection(self.name, **self.backend_options())

    def backend_options(self) -> dict:
        """Keyword arguments for the anymail backend (requests-based ones take a timeout)."""
        return {"timeout": self.timeout}

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        self.backend.open()
        return [self._send_one(message) for message in messages]

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        mail = anymail_message(message)
        try:
            self.backend.send_messages([mail])
        except AnymailRecipientsRefused as exc:
            answer = getattr(getattr(mail, "anymail_status", None), "esp_response", None)
            detail = answer.text[:300] if answer is not None else first_line(exc)
            return SendResult.failed(message.key, TransportError(f"recipient refused: {detail}", permanent=True))
        except Exception as exc:
            return SendResult.failed(message.key, self.error_from(exc))
        status = getattr(mail, "anymail_status", None)
        recipient = None
        if status is not None and status.recipients:
            recipient = next(iter(status.recipients.values()))
        if recipient is None or recipient.status in ("sent", "queued"):
            message_id = (recipient.message_id if recipient else None) or getattr(status, "message_id", "") or ""
            return SendResult.sent(message.key, str(message_id))
        if recipient.status in ("rejected", "invalid", "failed"):
            return SendResult(message.key, FAILED, error=f"{self.name} {recipient.status} the recipient")
        return SendResult(message.key, UNKNOWN, error=f"{self.name} answered {recipient.status}")

    def close(self) -> None:
        try:
            self.backend.close()
        except Exception:  # closing a session must never hide a send result
            logger.warning("closing the %s backend failed", self.name, exc_info=True)
