"""Campaign sending. For now: the outbox that the default provider writes to."""

from django.db import models


class OutboxMessage(models.Model):
    """A message the `outbox` provider kept instead of sending: viewable in the app."""

    message_id = models.CharField(max_length=64, unique=True)
    from_email = models.CharField(max_length=254)
    to = models.JSONField(default=list)
    subject = models.CharField(max_length=998)
    text = models.TextField(blank=True, default="")
    html = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.subject} -> {', '.join(self.to)}"
