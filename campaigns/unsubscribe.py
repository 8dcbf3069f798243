"""One-click unsubscribe tokens (RFC 8058): signed, opaque, one message each.

The token signs the ledger row's random key, so it says nothing about the customer, cannot
be forged, and can only ever unsubscribe the customer that message went to.
"""

import re

from django.conf import settings
from django.core import signing

SALT = "offerlab.campaigns.unsubscribe"
_signer = None


def _get_signer() -> signing.Signer:
    global _signer
    if _signer is None or _signer.key != settings.SECRET_KEY:
        _signer = signing.Signer(key=settings.SECRET_KEY, salt=SALT, sep=".")
    return _signer


def unsubscribe_token(key: str) -> str:
    return _get_signer().sign(key)


def unsubscribe_key(token: str) -> str | None:
    """The ledger key a token was made for, or None if it was not made by us."""
    try:
        return _get_signer().unsign(token)
    except signing.BadSignature:
        return None


def unsubscribe_url(key: str) -> str:
    return f"{settings.SITE_URL}/u/{unsubscribe_token(key)}/"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 + RFC 8058: mail clients show an unsubscribe button that POSTs to url."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


_token_in_url = re.compile(r"/u/[0-9a-f]{32}\.[A-Za-z0-9_-]+/")
REDACTED = "/u/[hidden]/"


def unsubscribe_redact(text: str) -> str:
    """The text with every unsubscribe link's token hidden: a token unsubscribes its
    customer, so only those who may act for the customers see it."""
    return _token_in_url.sub(REDACTED, text)
