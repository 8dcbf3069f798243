"""EMAIL_PROVIDER=outbox: one bulk insert per batch, viewable in the app; never throttles."""

from __future__ import annotations

from django.core.mail import get_connection

from campaigns.models import OutboxMessage

from .base import OutgoingMessage, Provider, SendResult, anymail_message


class OutboxProvider(Provider):
    name = "outbox"
    max_batch = 1000

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        backend = get_connection("campaigns.outbox.OutboxBackend")
        mails = [anymail_message(m) for m in messages]
        backend.send_messages(mails)
        return [SendResult.sent(m.key, mail.anymail_status.message_id) for m, mail in zip(messages, mails)]

    def lookup(self, batch: str) -> dict[str, str] | None:
        found = OutboxMessage.objects.filter(metadata__offerlab_batch=batch).values_list("metadata", "message_id")
        return {meta.get("offerlab_id"): message_id for meta, message_id in found}
