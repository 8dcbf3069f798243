"""EMAIL_PROVIDER=outbox: a Django email backend that stores messages and sends nothing.

It answers like an anymail backend (a message id per recipient on
`message.anymail_status`), so the sending code is the same whatever the provider.
"""

import uuid
from types import SimpleNamespace

from django.core.mail.backends.base import BaseEmailBackend


class OutboxBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        from .models import OutboxMessage

        rows = []
        for message in email_messages:
            message_id = str(uuid.uuid4())
            html = next((body for body, mime in getattr(message, "alternatives", []) if mime == "text/html"), "")
            rows.append(
                OutboxMessage(
                    message_id=message_id,
                    from_email=message.from_email,
                    to=list(message.to),
                    subject=message.subject,
                    text=message.body,
                    html=html,
                    headers=dict(message.extra_headers),
                    metadata=getattr(message, "metadata", None) or {},
                )
            )
            recipients = {
                address: SimpleNamespace(status="queued", message_id=message_id) for address in message.to
            }
            message.anymail_status = SimpleNamespace(
                status={"queued"}, message_id=message_id, recipients=recipients, esp_response=None
            )
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)
