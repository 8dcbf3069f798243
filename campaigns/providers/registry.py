"""Which provider class sends for an EMAIL_PROVIDER name.

A provider with a module of its own is listed in PROVIDERS; any other name anymail knows
(`resend`, `brevo`, ...) sends one message per call through AnymailProvider.
"""

from __future__ import annotations

from django.conf import settings

from .base import Provider
from .mailgun import MailgunProvider
from .outbox import OutboxProvider
from .per_message import AnymailProvider
from .postmark import PostmarkProvider
from .ses import SesProvider

PROVIDERS: dict[str, type[Provider]] = {
    cls.name: cls
    for cls in (
        OutboxProvider,
        PostmarkProvider,
        MailgunProvider,
        SesProvider,
    )
}


def provider_for(name: str | None = None) -> Provider:
    """The provider configured by EMAIL_PROVIDER (or the one named)."""
    name = name or settings.EMAIL_PROVIDER
    cls = PROVIDERS.get(name)
    if cls is not None and cls.enabled():
        return cls()
    return AnymailProvider(name)
